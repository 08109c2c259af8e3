"""Durable timers: verification checks, escalation deadlines and the status-update cadence.

One row per (incident, kind). A timer is *claimed* with a lease before its handler runs (``SKIP LOCKED`` on
PostgreSQL), so two schedulers, in one process or in two replicas, never fire the same timer at once; a
scheduler that dies mid-handler leaves a lease that simply expires and another replica fires it. Handlers
must therefore be idempotent (the action ledger and the outbox's dedupe keys make them so).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from receiver.store.base import TIMER_KINDS, Timer
from receiver.store.sql import Clock, Database

__all__ = ["SqlTimers"]

_SELECT = "SELECT id, incident_id, kind, due_ts, payload, attempts FROM timers"


def _timer(row: Any, attempts_delta: int = 0) -> Timer:
    return Timer(
        int(row["id"]),
        int(row["incident_id"]),
        row["kind"],
        float(row["due_ts"]),
        json.loads(row["payload"]),
        int(row["attempts"]) + attempts_delta,
    )


class SqlTimers:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def schedule(
        self,
        incident_id: int,
        kind: str,
        due_ts: float,
        payload: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
    ) -> bool:
        """Create the (incident, kind) timer; with ``replace`` also re-arm an existing one.

        Returns True when a timer was created or re-armed. Without ``replace`` an existing timer (pending,
        done or cancelled) is left alone, so scheduling again on a repeated event is a no-op.
        """
        if kind not in TIMER_KINDS:
            raise ValueError(f"unknown timer kind {kind!r}; expected one of {', '.join(TIMER_KINDS)}")
        body = json.dumps(dict(payload or {}), sort_keys=True)
        conflict = (
            """DO UPDATE SET due_ts = excluded.due_ts, payload = excluded.payload, state = 'pending',
                   lease_until_ts = 0, attempts = 0, last_error = NULL, updated_at = excluded.updated_at"""
            if replace
            else "DO NOTHING"
        )
        with self.db.transaction() as tx:
            cursor = tx.execute(
                f"""INSERT INTO timers (incident_id, kind, due_ts, payload, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (incident_id, kind) {conflict}""",
                (incident_id, kind, due_ts, body, self.clock()),
            )
            return cursor.rowcount == 1

    def claim_due(
        self, now: float | None = None, *, lease_seconds: float = 15.0, limit: int = 20
    ) -> list[Timer]:
        """Lease up to ``limit`` due pending timers (oldest due first)."""
        now = self.clock() if now is None else now
        where = "WHERE state = 'pending' AND due_ts <= ? AND lease_until_ts <= ?"
        with self.db.read() as tx:  # idle: no write lock, no fsync
            if tx.execute(f"SELECT 1 FROM timers {where} LIMIT 1", (now, now)).fetchone() is None:
                return []
        with self.db.transaction() as tx:
            rows = tx.execute(
                f"{_SELECT} {where} ORDER BY due_ts, id LIMIT ?{tx.skip_locked}", (now, now, limit)
            ).fetchall()
            for row in rows:
                tx.execute(
                    "UPDATE timers SET lease_until_ts = ?, attempts = attempts + 1 WHERE id = ?",
                    (now + lease_seconds, row["id"]),
                )
        return [_timer(row, 1) for row in rows]

    def renew(self, timer_id: int, lease_seconds: float) -> None:
        """Extend a claimed timer's lease while its handler runs (the claim's heartbeat)."""
        self._set(timer_id, "lease_until_ts = ?", [self.clock() + lease_seconds], only_pending=True)

    def complete(self, timer_id: int) -> None:
        self._set(timer_id, "state = 'done', lease_until_ts = 0")

    def reschedule(
        self, timer_id: int, due_ts: float, payload: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None:
        sets = "due_ts = ?, lease_until_ts = 0, last_error = ?"
        params: list[Any] = [due_ts, error]
        if payload is not None:
            sets += ", payload = ?"
            params.append(json.dumps(dict(payload), sort_keys=True))
        if error is None:
            sets += ", attempts = 0"
        self._set(timer_id, sets, params, only_pending=True)

    def cancel(self, incident_id: int, kinds: tuple[str, ...] = TIMER_KINDS) -> int:
        marks = ",".join("?" for _ in kinds)
        with self.db.transaction() as tx:
            cursor = tx.execute(
                f"UPDATE timers SET state = 'cancelled', lease_until_ts = 0, updated_at = ? "
                f"WHERE incident_id = ? AND state = 'pending' AND kind IN ({marks})",
                (self.clock(), incident_id, *kinds),
            )
            return cursor.rowcount

    def pending(self, incident_id: int | None = None) -> list[Timer]:
        sql = f"{_SELECT} WHERE state = 'pending'"
        params: tuple[Any, ...] = ()
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params = (incident_id,)
        with self.db.read() as tx:
            rows = tx.execute(sql + " ORDER BY due_ts, id", params).fetchall()
        return [_timer(r) for r in rows]

    def _set(
        self, timer_id: int, sets: str, params: list[Any] | None = None, *, only_pending: bool = False
    ) -> None:
        # a timer cancelled while its handler ran stays cancelled
        guard = " AND state = 'pending'" if only_pending else ""
        with self.db.transaction() as tx:
            tx.execute(
                f"UPDATE timers SET {sets}, updated_at = ? WHERE id = ?{guard}",
                (*(params or []), self.clock(), timer_id),
            )
