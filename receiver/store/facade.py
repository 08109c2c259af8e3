"""One store object over one :class:`~receiver.store.sql.Database`: the aggregates, health and schema.

:class:`SqlStore` is the :class:`~receiver.store.base.Store` for both backends; its aggregates are
attributes (``ingest``, ``incidents``, ``timers``, ``ledger``, ``outbox``, ``retention``, ``sessions``,
``approvals``, ``chat_threads``, ``inbound``), and the web layer's calls (ingest and incident reads) are
forwarded so that handlers keep one object to talk to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from receiver.errors import StoreError
from receiver.store.approvals import SqlApprovals, SqlChatThreads, SqlInbound
from receiver.store.base import (
    IncidentDetail,
    IncidentRecord,
    IncidentWriter,
    NotificationRecord,
    RejectedRecord,
)
from receiver.store.incidents import SqlIncidents
from receiver.store.ingest import SqlIngest
from receiver.store.ledger import SqlLedger
from receiver.store.outbox import SqlOutbox
from receiver.store.retention import SqlRetention
from receiver.store.sessions import SqlSessions
from receiver.store.sql import Clock, Database
from receiver.store.timers import SqlTimers

__all__ = ["SqlStore"]


class SqlStore:
    def __init__(self, db: Database, *, clock: Clock = time.time, rejected_body_cap: int = 64 * 1024) -> None:
        self.db, self.clock = db, clock
        self.dialect, self.description = db.dialect, db.description
        self.ingest = SqlIngest(db, clock, rejected_body_cap=rejected_body_cap)
        self.incidents = SqlIncidents(db, clock)
        self.timers = SqlTimers(db, clock)
        self.ledger = SqlLedger(db)
        self.outbox = SqlOutbox(db)
        self.retention = SqlRetention(db, clock)
        self.sessions = SqlSessions(db, clock)
        self.approvals = SqlApprovals(db, clock)
        self.chat_threads = SqlChatThreads(db, clock)
        self.inbound = SqlInbound(db, clock)

    # -- schema and health -------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        return self.db.migrate()

    def schema_version(self) -> int:
        return self.db.schema_version()

    def check_schema(self) -> None:
        current, newest = self.db.schema_version(), self.db.newest_migration()
        if current != newest:
            raise StoreError(
                f"database {self.description} is at schema version {current}, this receiver expects "
                f"{newest}; run 'receiver db upgrade'"
            )

    def check_writable(self) -> None:
        with self.db.transaction() as tx:
            # a real (no-op valued) write, so a read-only file, a full disk or a lost database shows up here
            tx.execute(
                "UPDATE schema_version SET applied_at = applied_at"
                " WHERE version = (SELECT MAX(version) FROM schema_version)"
            )

    def close(self) -> None:
        self.db.close()

    # -- the web layer's view: ingest ---------------------------------------------------------------------
    def record_notification(self, body: bytes, group_key: str | None = None) -> int:
        return self.ingest.record_notification(body, group_key)

    def record_rejected(
        self,
        *,
        status: int,
        reason: str,
        problems: list[str],
        content_type: str | None,
        body: bytes,
        body_size: int | None = None,
    ) -> int:
        return self.ingest.record_rejected(
            status=status,
            reason=reason,
            problems=problems,
            content_type=content_type,
            body=body,
            body_size=body_size,
        )

    def list_rejected(self, *, limit: int = 50, before_id: int | None = None) -> list[RejectedRecord]:
        return self.ingest.list_rejected(limit=limit, before_id=before_id)

    def next_received(self) -> NotificationRecord | None:
        return self.ingest.next_received()

    def apply_next(
        self, fn: Callable[[NotificationRecord, IncidentWriter], list[dict[str, Any]]]
    ) -> tuple[NotificationRecord, list[dict[str, Any]] | None] | None:
        return self.ingest.apply_next(fn)

    def apply(
        self, notification_id: int, fn: Callable[[IncidentWriter], list[dict[str, Any]]]
    ) -> list[dict[str, Any]] | None:
        return self.ingest.apply(notification_id, fn)

    def claim_applied(self, lease_seconds: float = 30.0) -> NotificationRecord | None:
        return self.ingest.claim_applied(lease_seconds)

    def renew(self, notification_id: int, lease_seconds: float) -> None:
        self.ingest.renew(notification_id, lease_seconds)

    def mark_done(self, notification_id: int) -> None:
        self.ingest.mark_done(notification_id)

    def mark_retry(self, notification_id: int, error: str, *, delay: float, max_attempts: int) -> str:
        return self.ingest.mark_retry(notification_id, error, delay=delay, max_attempts=max_attempts)

    def pending_count(self) -> int:
        return self.ingest.pending_count()

    def oldest_pending_ts(self) -> float | None:
        return self.ingest.oldest_pending_ts()

    def watch(self, on_new: Callable[[], None]) -> Callable[[], None]:
        return self.ingest.watch(on_new)

    def notification_counts(self) -> dict[str, int]:
        return self.ingest.notification_counts()

    # -- the web layer's view: incidents ------------------------------------------------------------------
    def list_incidents(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        runbook: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[IncidentRecord]:
        return self.incidents.list_incidents(
            state=state, model=model, runbook=runbook, limit=limit, before_id=before_id
        )

    def get_incident(self, incident_id: int) -> IncidentDetail:
        return self.incidents.get_incident(incident_id)

    def incident_counts(self) -> dict[tuple[str, str], int]:
        return self.incidents.incident_counts()

    def has_timeline(self, incident_id: int, dedupe_key: str) -> bool:
        return self.incidents.has_timeline(incident_id, dedupe_key)

    def add_timeline(
        self,
        incident_id: int,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> bool:
        return self.incidents.add_timeline(incident_id, kind, message, data, dedupe_key=dedupe_key)

    def transition(
        self,
        incident_id: int,
        to_state: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        allowed_from: tuple[str, ...] | None = None,
    ) -> bool:
        return self.incidents.transition(incident_id, to_state, message, data, allowed_from=allowed_from)

    def record_contained(self, incident_id: int, message: str, data: Mapping[str, Any] | None = None) -> bool:
        return self.incidents.record_contained(incident_id, message, data)

    def acknowledge(self, incident_id: int, actor: str, note: str = "") -> bool:
        return self.incidents.acknowledge(incident_id, actor, note)

    def mark_escalated(self, incident_id: int) -> bool:
        return self.incidents.mark_escalated(incident_id)

    def raise_severity(self, incident_id: int, level: str, reason: str) -> bool:
        return self.incidents.raise_severity(incident_id, level, reason)


class SQLiteStore(SqlStore):
    """:class:`SqlStore` on one SQLite file (the embedded default). ``connection()`` is for tests' reads."""

    def __init__(
        self,
        path: Any,
        *,
        busy_timeout_ms: int = 5000,
        rejected_body_cap: int = 64 * 1024,
        clock: Clock = time.time,
        migrations_dir: Any = None,
    ) -> None:
        from receiver.store.sqlite_db import SQLiteDatabase

        self.sqlite = SQLiteDatabase(path, busy_timeout_ms=busy_timeout_ms, migrations_dir=migrations_dir)
        self.path = self.sqlite.path
        super().__init__(self.sqlite, clock=clock, rejected_body_cap=rejected_body_cap)

    def connection(self) -> Any:
        return self.sqlite.connection()
