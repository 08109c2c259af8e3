"""The outbox's rows: status updates queued durably and handed out head-first, per channel, with leases.

``dedupe_key`` is unique, so queuing the same message again (a retried webhook, an HA duplicate, a restart
replaying events) is a no-op. Only the oldest pending message of a channel (its head) is ever claimed, and a
claim is a lease taken under ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: two replicas never send one message,
and a failing head blocks later messages of *its* channel only. Delivery policy (retries, backoff, dead
letters) lives in :mod:`receiver.comms.outbox`; this module only keeps the rows.
"""

from __future__ import annotations

import json
from typing import Any

from receiver.errors import NotFound
from receiver.store.base import OutboxMessage
from receiver.store.sql import Database

__all__ = ["SqlOutbox"]

_COLUMNS = (
    "id, incident_id, channel, dedupe_key, payload, status, attempts, next_attempt_at, last_error, "
    "last_status, created_at, delivered_at, failed_at"
)


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        id=int(row["id"]),
        incident_id=row["incident_id"],
        channel=row["channel"],
        dedupe_key=row["dedupe_key"],
        payload=json.loads(row["payload"]),
        status=row["status"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=row["last_error"],
        last_status=row["last_status"],
        created_at=float(row["created_at"]),
        delivered_at=row["delivered_at"],
        failed_at=row["failed_at"],
    )


class SqlOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, incident_id: str, channel: str, body: str, dedupe_key: str, now: float) -> bool:
        """Queue a JSON ``body``; False when ``dedupe_key`` was already queued."""
        with self.db.transaction() as tx:
            cursor = tx.execute(
                """INSERT INTO outbox (incident_id, channel, dedupe_key, payload, next_attempt_at, created_at)
                   VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                (incident_id, channel, dedupe_key, body, now, now),
            )
            return cursor.rowcount == 1

    def claim_head(self, now: float, blocked: set[str], lease_s: float) -> OutboxMessage | None:
        """Lease the oldest due head of a channel not in ``blocked``; channels whose head is not due (or is
        being sent by someone else) are added to ``blocked``."""
        with self.db.read() as tx:  # a read-only look first: an idle outbox never takes the write lock
            due = tx.execute(
                "SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until <= ? "
                "LIMIT 1",
                (now, now),
            ).fetchone()
        if due is None:
            return None
        with self.db.transaction() as tx:
            heads = tx.execute(
                # status is checked again outside the subquery: under FOR UPDATE PostgreSQL re-checks only
                # the outer WHERE against a row another replica just changed, so without it a head that
                # replica has just delivered would come back here and be sent twice
                f"""SELECT {_COLUMNS}, lease_until FROM outbox WHERE status = 'pending' AND id IN (
                        SELECT MIN(id) FROM outbox WHERE status = 'pending' GROUP BY channel)
                    ORDER BY id{tx.skip_locked}"""
            ).fetchall()
            seen = {row["channel"] for row in heads}
            for row in heads:
                message = _message(row)
                if message.channel in blocked:
                    continue
                if message.next_attempt_at > now or float(row["lease_until"]) > now:
                    blocked.add(message.channel)  # the head is not due (or being sent elsewhere)
                    continue
                # still the head? (a head delivered by another replica since our subquery ran)
                tx.execute("UPDATE outbox SET lease_until = ? WHERE id = ?", (now + lease_s, message.id))
                return message
            # heads locked by another replica were skipped: their channels are busy, not free
            pending = tx.execute("SELECT DISTINCT channel FROM outbox WHERE status = 'pending'").fetchall()
            blocked.update(r[0] for r in pending if r[0] not in seen)
        return None

    def renew(self, message_id: int, lease_until: float) -> None:
        """Extend the lease of a message being sent (the sender's heartbeat)."""
        with self.db.transaction(durable=False) as tx:
            tx.execute(
                "UPDATE outbox SET lease_until = ? WHERE id = ? AND status = 'pending'",
                (lease_until, message_id),
            )

    def release(self, message_id: int, error: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE outbox SET lease_until = 0, last_error = ? WHERE id = ?", (error, message_id))

    def mark_delivered(self, message_id: int, status: int, now: float) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                """UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?,
                       last_status = ?, lease_until = 0 WHERE id = ?""",
                (now, status, message_id),
            )

    def mark_retry(
        self, message_id: int, attempts: int, next_attempt_at: float, error: str, status: int | None
    ) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                """UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, last_status = ?,
                       lease_until = 0 WHERE id = ?""",
                (attempts, next_attempt_at, error, status, message_id),
            )

    def mark_failed(self, message_id: int, attempts: int, now: float, error: str, status: int | None) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                """UPDATE outbox SET status = 'failed', attempts = ?, failed_at = ?, last_error = ?,
                       last_status = ?, lease_until = 0 WHERE id = ?""",
                (attempts, now, error, status, message_id),
            )

    def pending_count(self) -> int:
        with self.db.read() as tx:
            return int(tx.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0])

    def oldest_pending_at(self) -> float | None:
        with self.db.read() as tx:
            value = tx.execute("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'").fetchone()[0]
        return None if value is None else float(value)

    def select(
        self, *, status: str | None = None, channel: str | None = None, incident_id: str | None = None
    ) -> list[OutboxMessage]:
        clauses, params = ["1 = 1"], []
        for column, value in (("status", status), ("channel", channel), ("incident_id", incident_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        with self.db.read() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE {' AND '.join(clauses)} ORDER BY id", params
            ).fetchall()
        return [_message(r) for r in rows]

    def requeue(self, message_id: int, now: float) -> tuple[OutboxMessage, int]:
        """Copy a dead letter to the end of its channel; returns (the dead letter, the new id)."""
        with self.db.transaction() as tx:
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE id = ?{tx.locking}", (message_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"outbox message {message_id} does not exist")
            old = _message(row)
            if old.status != "failed":
                raise ValueError(
                    f"outbox message {message_id} is {old.status}, not failed; "
                    "only dead letters can be requeued"
                )
            new_id = int(
                tx.execute(
                    """INSERT INTO outbox
                           (incident_id, channel, dedupe_key, payload, next_attempt_at, created_at)
                       VALUES (?, ?, ?, ?, ?, ?) RETURNING id""",
                    (
                        old.incident_id,
                        old.channel,
                        f"{old.dedupe_key}#requeued-{now:.6f}",
                        json.dumps(old.payload, sort_keys=True),
                        now,
                        now,
                    ),
                ).fetchone()[0]
            )
            tx.execute(
                "UPDATE outbox SET last_error = ? WHERE id = ?",
                (f"requeued as message {new_id}; {old.last_error or ''}", message_id),
            )
        return old, new_id
