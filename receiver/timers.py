"""Durable timers: verification checks, escalation deadlines and the status-update cadence.

One row per (incident, kind) in the ``timers`` table (migration 0004). A timer is *claimed* with a lease
before its handler runs, so two schedulers on one database never fire the same timer at once, and a
scheduler that dies mid-handler leaves a lease that simply expires: the timer fires again after a restart.
Handlers must therefore be idempotent (the action ledger and the outbox's dedupe keys make them so).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from receiver.store.sqlite import SQLiteStore

__all__ = ["TIMER_KINDS", "Timer", "TimerStore"]

TIMER_KINDS = ("verify", "escalate", "update", "upgrade")


@dataclass(frozen=True, slots=True)
class Timer:
    id: int
    incident_id: int
    kind: str
    due_ts: float
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


class TimerStore:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

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
        now = time.time()
        body = json.dumps(dict(payload or {}), sort_keys=True)
        with self.store.transaction() as conn:
            if replace:
                cursor = conn.execute(
                    """INSERT INTO timers (incident_id, kind, due_ts, payload, updated_at)
                       VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT (incident_id, kind) DO UPDATE SET
                           due_ts = excluded.due_ts, payload = excluded.payload, state = 'pending',
                           lease_until_ts = 0, attempts = 0, last_error = NULL,
                           updated_at = excluded.updated_at""",
                    (incident_id, kind, due_ts, body, now),
                )
            else:
                cursor = conn.execute(
                    """INSERT OR IGNORE INTO timers (incident_id, kind, due_ts, payload, updated_at)
                       VALUES (?, ?, ?, ?, ?)""",
                    (incident_id, kind, due_ts, body, now),
                )
            return cursor.rowcount == 1

    def claim_due(
        self, now: float | None = None, *, lease_seconds: float = 60.0, limit: int = 20
    ) -> list[Timer]:
        """Lease up to ``limit`` due pending timers (oldest due first)."""
        now = time.time() if now is None else now
        due = (
            self.store.connection()
            .execute(
                "SELECT 1 FROM timers WHERE state = 'pending' AND due_ts <= ? AND lease_until_ts <= ? "
                "LIMIT 1",
                (now, now),
            )
            .fetchone()
        )
        if due is None:  # idle: no write lock, no fsync
            return []
        with self.store.transaction() as conn:
            rows = conn.execute(
                """SELECT id, incident_id, kind, due_ts, payload, attempts FROM timers
                   WHERE state = 'pending' AND due_ts <= ? AND lease_until_ts <= ?
                   ORDER BY due_ts, id LIMIT ?""",
                (now, now, limit),
            ).fetchall()
            for row in rows:
                conn.execute(
                    "UPDATE timers SET lease_until_ts = ?, attempts = attempts + 1 WHERE id = ?",
                    (now + lease_seconds, row["id"]),
                )
        return [
            Timer(
                row["id"],
                row["incident_id"],
                row["kind"],
                row["due_ts"],
                json.loads(row["payload"]),
                row["attempts"] + 1,
            )
            for row in rows
        ]

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
        self._set(timer_id, sets, params)

    def cancel(self, incident_id: int, kinds: tuple[str, ...] = TIMER_KINDS) -> int:
        marks = ",".join("?" for _ in kinds)
        with self.store.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE timers SET state = 'cancelled', lease_until_ts = 0, updated_at = ? "
                f"WHERE incident_id = ? AND state = 'pending' AND kind IN ({marks})",
                (time.time(), incident_id, *kinds),
            )
            return cursor.rowcount

    def pending(self, incident_id: int | None = None) -> list[Timer]:
        sql = "SELECT id, incident_id, kind, due_ts, payload, attempts FROM timers WHERE state = 'pending'"
        params: tuple[Any, ...] = ()
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params = (incident_id,)
        rows = self.store.connection().execute(sql + " ORDER BY due_ts, id", params).fetchall()
        return [
            Timer(r["id"], r["incident_id"], r["kind"], r["due_ts"], json.loads(r["payload"]), r["attempts"])
            for r in rows
        ]

    def _set(self, timer_id: int, sets: str, params: list[Any] | None = None) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                f"UPDATE timers SET {sets}, updated_at = ? WHERE id = ?",
                (*(params or []), time.time(), timer_id),
            )
