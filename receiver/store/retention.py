"""Retention: the store's SQL for pruning what is old, so the database stops growing with every incident.

What goes, past a cut-off time (the policy, and rendering reviews, live in :mod:`receiver.retention`):

* the raw body and events of processed notifications (``done``/``failed``); the row stays, because
  ``alert_history`` and ``timeline`` reference it (on SQLite it is re-inserted rather than updated, so its
  page space is really given back: see :func:`_rewrite_emptied`); the alert-transition keys that make
  ingest idempotent live in ``alert_history``, which is kept;
* the body of rejected requests (their status, reason, problems and size stay);
* for a closed incident: its timeline, alert membership, timers, outbox and ledger rows, once its review
  (rendered above the store from exactly that timeline) is stored in ``incident_reviews``; the incident's
  row (its summary) stays.

Every step is a short batch, idempotent, and safe with several replicas pruning at once: body batches are
claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (``BEGIN IMMEDIATE`` serializes them on SQLite), and an
incident is archived only if, under its row lock, it is still closed before the cut-off, has no review yet,
nothing of it is still in flight (a pending message, a claimed or running action), and its timeline ends
where the rendered review ends. A lease (:meth:`SqlRetention.try_lease`) lets replicas take turns so they
do not render the same reviews twice; correctness never depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from receiver.store.sql import Clock, Database, Tx, utc_stamp

__all__ = ["ArchivedReview", "ReviewToArchive", "SqlRetention"]


@dataclass(frozen=True, slots=True)
class ReviewToArchive:
    """A review rendered from the incident's timeline up to ``last_timeline_id`` (0: an empty timeline)."""

    incident_id: int
    markdown: str
    last_timeline_id: int


@dataclass(frozen=True, slots=True)
class ArchivedReview:
    incident_id: int
    markdown: str
    archived_at: str


def _in_flight(key: str) -> str:
    """True while something still works on the incident whose text id is ``key`` (a column or ``?``):
    a message not yet delivered or given up, an action step claimed or running."""
    return (
        f"EXISTS (SELECT 1 FROM outbox o WHERE o.incident_id = {key} AND o.status = 'pending')"
        " OR EXISTS (SELECT 1 FROM action_ledger l"
        f" WHERE l.incident_id = {key} AND l.state IN ('claimed', 'running'))"
    )


def _rewrite_emptied(tx: Tx, batch: str, params: tuple[Any, ...]) -> int:
    """SQLite: empty the bodies by deleting and re-inserting the rows (same ids, same values), not by an
    ``UPDATE``. SQLite merges B-tree pages when rows are deleted but never when an update shrinks a row, so
    emptied rows would keep one mostly empty page per notification forever (measured: ~4 KB each, the
    same as before pruning). The foreign keys from ``alert_history`` and ``timeline`` are checked at
    commit (``defer_foreign_keys``, reset by SQLite when the transaction ends), when the rows are back."""
    columns = [r["name"] for r in tx.execute("PRAGMA table_info(notifications)").fetchall()]
    kept = [c for c in columns if c not in ("body", "events")]
    rows = tx.execute(f"SELECT {', '.join(kept)} FROM notifications WHERE id IN ({batch})", params).fetchall()
    if not rows:
        return 0
    tx.execute("PRAGMA defer_foreign_keys = ON")
    marks = ", ".join("?" * (len(kept) + 1))
    ids = [row["id"] for row in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        tx.execute(f"DELETE FROM notifications WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
    for row in rows:
        tx.execute(
            f"INSERT INTO notifications ({', '.join(kept)}, body) VALUES ({marks})", (*tuple(row), b"")
        )
    return len(rows)


class SqlRetention:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    # -- bodies ------------------------------------------------------------------------------------------
    def prune_notification_bodies(self, before_ts: float, *, limit: int = 500) -> int:
        """Empty body and events of up to ``limit`` processed notifications received before ``before_ts``."""
        with self.db.transaction(durable=False) as tx:
            batch = f"""SELECT id FROM notifications
                    WHERE state IN ('done', 'failed') AND length(body) > 0 AND received_ts < ?
                    ORDER BY received_ts LIMIT ?{tx.skip_locked}"""
            if self.db.dialect == "sqlite":
                return _rewrite_emptied(tx, batch, (before_ts, limit))
            cursor = tx.execute(
                f"UPDATE notifications SET body = ?, events = NULL WHERE id IN ({batch})",
                (b"", before_ts, limit),
            )
            return max(0, cursor.rowcount)

    def prune_rejected_bodies(self, before_ts: float, *, limit: int = 500) -> int:
        """Empty the body of up to ``limit`` rejected requests received before ``before_ts``."""
        with self.db.transaction(durable=False) as tx:
            cursor = tx.execute(
                f"""UPDATE rejected SET body = ? WHERE id IN (
                        SELECT id FROM rejected WHERE length(body) > 0 AND received_at < ?
                        ORDER BY received_at LIMIT ?{tx.skip_locked})""",
                (b"", utc_stamp(before_ts), limit),
            )
            return max(0, cursor.rowcount)

    # -- incidents ---------------------------------------------------------------------------------------
    def incidents_to_archive(
        self, closed_before_ts: float, *, after_id: int = 0, limit: int = 50
    ) -> list[int]:
        """Ids (ascending, above ``after_id``) of incidents closed before the cut-off, not yet archived and
        with nothing in flight."""
        with self.db.read() as tx:
            rows = tx.execute(
                f"""SELECT i.id FROM incidents i
                    WHERE i.state = 'closed' AND i.closed_at < ? AND i.id > ?
                      AND NOT EXISTS (SELECT 1 FROM incident_reviews r WHERE r.incident_id = i.id)
                      AND NOT ({_in_flight("CAST(i.id AS TEXT)")})
                    ORDER BY i.id LIMIT ?""",
                (utc_stamp(closed_before_ts), after_id, limit),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def archive_incidents(self, reviews: Sequence[ReviewToArchive], closed_before_ts: float) -> list[int]:
        """Store each review and delete what it was rendered from, in one transaction; returns the ids
        archived. An incident is left alone (and tried again by a later pass) if it is locked by another
        replica, no longer qualifies, already has a review, or its timeline grew after the review."""
        cutoff, now = utc_stamp(closed_before_ts), utc_stamp(self.clock())
        archived: list[int] = []
        with self.db.transaction() as tx:
            for review in reviews:
                if self._archive_one(tx, review, cutoff, now):
                    archived.append(review.incident_id)
        return archived

    def _archive_one(self, tx: Tx, review: ReviewToArchive, cutoff: str, now: str) -> bool:
        incident_id, key = review.incident_id, str(review.incident_id)
        row = tx.execute(
            f"SELECT state, closed_at FROM incidents WHERE id = ?{tx.skip_locked}", (incident_id,)
        ).fetchone()
        if row is None or row["state"] != "closed" or not row["closed_at"] or row["closed_at"] >= cutoff:
            return False
        last = tx.execute(
            "SELECT COALESCE(MAX(id), 0) FROM timeline WHERE incident_id = ?", (incident_id,)
        ).fetchone()[0]
        if int(last) != review.last_timeline_id:
            return False
        if tx.execute(f"SELECT CASE WHEN {_in_flight('?')} THEN 1 ELSE 0 END", (key, key)).fetchone()[0]:
            return False
        inserted = tx.execute(
            "INSERT INTO incident_reviews (incident_id, markdown, archived_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (incident_id, review.markdown, now),
        )
        if inserted.rowcount != 1:
            return False
        for table in ("timeline", "incident_alerts", "timers"):
            tx.execute(f"DELETE FROM {table} WHERE incident_id = ?", (incident_id,))
        for table in ("outbox", "action_ledger"):
            tx.execute(f"DELETE FROM {table} WHERE incident_id = ?", (key,))
        return True

    def archived_review(self, incident_id: int) -> ArchivedReview | None:
        """The review stored when the incident was pruned, or None (not pruned: render it live)."""
        with self.db.read() as tx:
            row = tx.execute(
                "SELECT incident_id, markdown, archived_at FROM incident_reviews WHERE incident_id = ?",
                (incident_id,),
            ).fetchone()
        if row is None:
            return None
        return ArchivedReview(int(row["incident_id"]), row["markdown"], row["archived_at"])

    def archived_count(self) -> int:
        with self.db.read() as tx:
            return int(tx.execute("SELECT COUNT(*) FROM incident_reviews").fetchone()[0])

    # -- a lease for taking turns ----------------------------------------------------------------------
    def try_lease(self, name: str, owner: str, lease_seconds: float) -> bool:
        """Take (or renew) the lease ``name`` for ``owner`` unless another owner holds it unexpired."""
        now = self.clock()
        with self.db.transaction(durable=False) as tx:
            cursor = tx.execute(
                """INSERT INTO maintenance_leases (name, owner, lease_until) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
                   WHERE maintenance_leases.owner = excluded.owner OR maintenance_leases.lease_until < ?""",
                (name, owner, now + lease_seconds, now),
            )
            return cursor.rowcount == 1

    def release_lease(self, name: str, owner: str) -> None:
        with self.db.transaction(durable=False) as tx:
            tx.execute("DELETE FROM maintenance_leases WHERE name = ? AND owner = ?", (name, owner))
