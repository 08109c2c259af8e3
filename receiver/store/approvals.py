"""Approval gates, Slack threads and signed inbound requests: the rows behind the people in the loop.

* :class:`SqlApprovals`: one row per gated (incident, phase, step). The first decision wins with a
  conditional ``UPDATE ... WHERE state = 'pending'``: on SQLite writers are serialized by ``BEGIN IMMEDIATE``,
  on PostgreSQL the row lock makes a concurrent second ``UPDATE`` re-check its ``WHERE`` after the first
  commits and match nothing, so exactly one caller sees ``rowcount == 1`` across threads and replicas.
* :class:`SqlChatThreads`: the first Slack message of an incident per channel (its ``ts``), kept durably so
  replies land in its thread after a restart or on another replica.
* :class:`SqlInbound`: Slack interactions and PagerDuty webhooks recorded before they are answered, unique
  per (source, key) so a replay or a second delivery is recognised, then leased to the worker that acts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from receiver.errors import NotFound
from receiver.store.records import Approval, ChatThread, InboundEvent
from receiver.store.sql import Clock, Database, utc_stamp

__all__ = ["SqlApprovals", "SqlChatThreads", "SqlInbound"]

_COLUMNS = (
    "id, incident_id, phase, step_id, kind, summary, role, state, requested_at, timeout_at, on_timeout,"
    " decided_by, decided_at, reason"
)
_DECISIONS = {"approve": "approved", "deny": "denied"}


def _approval(row: Any) -> Approval:
    return Approval(
        id=int(row["id"]),
        incident_id=int(row["incident_id"]),
        phase=row["phase"],
        step_id=row["step_id"],
        kind=row["kind"],
        summary=row["summary"],
        role=row["role"],
        state=row["state"],
        requested_at=row["requested_at"],
        timeout_at=row["timeout_at"],
        on_timeout=row["on_timeout"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        reason=row["reason"],
    )


class SqlApprovals:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def request(
        self,
        *,
        incident_id: int,
        phase: str,
        step_id: str,
        kind: str,
        summary: str,
        role: str,
        timeout_ts: float,
        on_timeout: str,
        step: Mapping[str, Any] | None = None,
    ) -> tuple[Approval, bool]:
        """Ask for a decision on the step; returns (the approval, True if this call created it).

        Idempotent per (incident, phase, step): a repeat returns the existing row unchanged, whatever its
        state, so a decided gate is never re-opened by a retry or a second replica.
        """
        if on_timeout not in ("proceed", "skip"):
            raise ValueError(f"on_timeout must be proceed or skip, got {on_timeout!r}")
        now = self.clock()
        with self.db.transaction() as tx:
            cursor = tx.execute(
                """INSERT INTO approvals (incident_id, phase, step_id, kind, summary, role, requested_at,
                       timeout_at, timeout_ts, on_timeout, step) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (incident_id, phase, step_id) DO NOTHING""",
                (
                    incident_id,
                    phase,
                    step_id,
                    kind,
                    summary,
                    role,
                    utc_stamp(now),
                    utc_stamp(timeout_ts),
                    timeout_ts,
                    on_timeout,
                    json.dumps(dict(step or {}), sort_keys=True),
                ),
            )
            created = cursor.rowcount == 1
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE incident_id = ? AND phase = ? AND step_id = ?",
                (incident_id, phase, step_id),
            ).fetchone()
        return _approval(row), created

    def get(self, approval_id: int) -> Approval:
        with self.db.read() as tx:
            row = tx.execute(f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        if row is None:
            raise NotFound(f"approval {approval_id} does not exist")
        return _approval(row)

    def find(self, incident_id: int, phase: str, step_id: str) -> Approval | None:
        with self.db.read() as tx:
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE incident_id = ? AND phase = ? AND step_id = ?",
                (incident_id, phase, step_id),
            ).fetchone()
        return None if row is None else _approval(row)

    def step_of(self, approval_id: int) -> dict[str, Any]:
        """The gated step as it was when approval was requested (what a decision runs)."""
        with self.db.read() as tx:
            row = tx.execute("SELECT step FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        if row is None:
            raise NotFound(f"approval {approval_id} does not exist")
        step: dict[str, Any] = json.loads(row["step"])
        return step

    def for_incident(self, incident_id: int) -> list[Approval]:
        with self.db.read() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE incident_id = ? ORDER BY id", (incident_id,)
            ).fetchall()
        return [_approval(r) for r in rows]

    def pending(self, incident_id: int | None = None) -> list[Approval]:
        sql = f"SELECT {_COLUMNS} FROM approvals WHERE state = 'pending'"
        params: tuple[Any, ...] = ()
        if incident_id is not None:
            sql, params = sql + " AND incident_id = ?", (incident_id,)
        with self.db.read() as tx:
            rows = tx.execute(sql + " ORDER BY timeout_ts, id", params).fetchall()
        return [_approval(r) for r in rows]

    def decide(self, approval_id: int, decision: str, actor: str, reason: str = "") -> tuple[Approval, bool]:
        """Record ``decision`` (approve|deny) unless one was made already; (the approval now, True if won)."""
        state = _DECISIONS.get(decision)
        if state is None:
            raise ValueError(f"decision must be approve or deny, got {decision!r}")
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, reason = ?"
                " WHERE id = ? AND state = 'pending'",
                (state, actor, utc_stamp(self.clock()), reason, approval_id),
            )
            won = cursor.rowcount == 1
            row = tx.execute(f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        if row is None:
            raise NotFound(f"approval {approval_id} does not exist")
        return _approval(row), won

    def expire_due(self, now: float | None = None, incident_id: int | None = None) -> list[Approval]:
        """Move pending approvals past their timeout to ``expired``; returns those *this call* expired."""
        now = self.clock() if now is None else now
        sql = (
            "UPDATE approvals SET state = 'expired', decided_by = 'timeout', decided_at = ?, reason = ?"
            " WHERE state = 'pending' AND timeout_ts <= ?"
        )
        params: list[Any] = [utc_stamp(now), "no decision before the timeout", now]
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        with self.db.transaction() as tx:
            rows = tx.execute(sql + f" RETURNING {_COLUMNS}", params).fetchall()
        return sorted((_approval(r) for r in rows), key=lambda a: a.id)

    def next_timeout(self, incident_id: int) -> float | None:
        with self.db.read() as tx:
            row = tx.execute(
                "SELECT MIN(timeout_ts) FROM approvals WHERE incident_id = ? AND state = 'pending'",
                (incident_id,),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def unapplied(self, limit: int = 50) -> list[Approval]:
        """Decided approvals whose consequence has not been recorded as carried out (a crash in between)."""
        with self.db.read() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE applied_at IS NULL AND state <> 'pending'"
                " ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [_approval(r) for r in rows]

    def mark_applied(self, approval_id: int) -> bool:
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE approvals SET applied_at = ? WHERE id = ? AND applied_at IS NULL",
                (utc_stamp(self.clock()), approval_id),
            )
            return cursor.rowcount == 1


class SqlChatThreads:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def get(self, channel: str, incident_id: int) -> ChatThread | None:
        with self.db.read() as tx:
            row = tx.execute(
                "SELECT channel, incident_id, conversation, thread_ts FROM chat_threads"
                " WHERE channel = ? AND incident_id = ?",
                (channel, incident_id),
            ).fetchone()
        if row is None:
            return None
        return ChatThread(row["channel"], int(row["incident_id"]), row["conversation"], row["thread_ts"])

    def remember(self, channel: str, incident_id: int, conversation: str, thread_ts: str) -> ChatThread:
        """Keep the first message's ``ts``; if one is already kept, that one stays (and is returned)."""
        with self.db.transaction() as tx:
            tx.execute(
                """INSERT INTO chat_threads (channel, incident_id, conversation, thread_ts, created_at)
                   VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, incident_id) DO NOTHING""",
                (channel, incident_id, conversation, thread_ts, self.clock()),
            )
        found = self.get(channel, incident_id)
        assert found is not None
        return found


class SqlInbound:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def record(self, source: str, dedupe_key: str, payload: Mapping[str, Any]) -> int | None:
        """Commit the request durably; its id, or None when (source, key) was seen before (a replay)."""
        with self.db.transaction(urgent=True) as tx:
            row = tx.execute(
                """INSERT INTO inbound_events (source, dedupe_key, payload, received_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (source, dedupe_key) DO NOTHING RETURNING id""",
                (source, dedupe_key, json.dumps(dict(payload), sort_keys=True), self.clock()),
            ).fetchone()
        return None if row is None else int(row["id"])

    def claim(self, lease_seconds: float = 30.0, limit: int = 20) -> list[InboundEvent]:
        """Lease pending requests (oldest first) to this worker."""
        now = self.clock()
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT id, source, dedupe_key, payload, state, attempts FROM inbound_events"
                f" WHERE state = 'pending' AND lease_until <= ? ORDER BY id LIMIT ?{tx.skip_locked}",
                (now, limit),
            ).fetchall()
            for row in rows:
                tx.execute(
                    "UPDATE inbound_events SET lease_until = ?, attempts = attempts + 1 WHERE id = ?",
                    (now + lease_seconds, row["id"]),
                )
        return [
            InboundEvent(
                int(r["id"]),
                r["source"],
                r["dedupe_key"],
                json.loads(r["payload"]),
                r["state"],
                int(r["attempts"]) + 1,
            )
            for r in rows
        ]

    def finish(self, event_id: int, state: str = "done", error: str | None = None) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE inbound_events SET state = ?, last_error = ?, done_at = ?, lease_until = 0"
                " WHERE id = ?",
                (state, error, self.clock(), event_id),
            )

    def retry(self, event_id: int, error: str, delay: float) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE inbound_events SET last_error = ?, lease_until = ?"
                " WHERE id = ? AND state = 'pending'",
                (error, self.clock() + delay, event_id),
            )

    def state_of(self, event_id: int) -> str:
        with self.db.read() as tx:
            row = tx.execute("SELECT state FROM inbound_events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            raise NotFound(f"inbound event {event_id} does not exist")
        return str(row["state"])

    def incident_for_key(self, incident_key: str) -> int | None:
        """The newest incident with this key (PagerDuty's ``incident_key`` is our page's ``dedup_key``)."""
        with self.db.read() as tx:
            row = tx.execute(
                "SELECT id FROM incidents WHERE incident_key = ? ORDER BY id DESC LIMIT 1", (incident_key,)
            ).fetchone()
        return None if row is None else int(row["id"])
