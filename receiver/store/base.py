"""The durable store's interface: records, and one narrow protocol per aggregate.

Everything above ``receiver/store/`` depends on these protocols, never on a backend; SQLite and PostgreSQL
implement them with the same SQL (:mod:`receiver.store.sql`) and pass one contract suite.

This module holds the web layer's view; the aggregates the store holds as attributes (timers, ledger, outbox,
retention, sessions, approvals, chat threads, inbound) are in :mod:`receiver.store.aggregates`, and every
name is re-exported here so that ``from receiver.store.base import …`` keeps working.

* :class:`IngestQueue`: raw notifications (durable before the 200), their processing, rejected bodies.
* :class:`IncidentWriter`: what :mod:`receiver.incidents` sees *inside* one notification's transaction.
* :class:`IncidentStore`: incidents, alerts and timeline; the lifecycle is enforced in its ``transition``.
* :class:`Store`: the whole, as the app, the worker and the CLI hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from receiver.store.aggregates import (
    ActionLedger,
    ApprovalRows,
    ChatThreads,
    InboundRows,
    OutboxRows,
    RetentionRows,
    SessionStore,
    TimerQueue,
)
from receiver.store.records import (
    FINAL_STATES,
    TIMER_KINDS,
    AlertRecord,
    Approval,
    ChatThread,
    Claim,
    GuardPolicy,
    InboundEvent,
    IncidentDetail,
    IncidentRecord,
    LedgerKey,
    LedgerRow,
    NotificationRecord,
    OutboxMessage,
    RejectedRecord,
    TimelineEntry,
    Timer,
)
from receiver.store.retention import ArchivedReview, ReviewToArchive
from receiver.store.sessions import ConsoleSession

__all__ = [
    "FINAL_STATES",
    "TIMER_KINDS",
    "ActionLedger",
    "AlertRecord",
    "Approval",
    "ApprovalRows",
    "ArchivedReview",
    "ChatThread",
    "ChatThreads",
    "Claim",
    "ConsoleSession",
    "GuardPolicy",
    "InboundEvent",
    "InboundRows",
    "IncidentDetail",
    "IncidentRecord",
    "IncidentStore",
    "IncidentWriter",
    "IngestQueue",
    "LedgerKey",
    "LedgerRow",
    "NotificationRecord",
    "OutboxMessage",
    "OutboxRows",
    "RejectedRecord",
    "RetentionRows",
    "ReviewToArchive",
    "SessionStore",
    "Store",
    "TimelineEntry",
    "Timer",
    "TimerQueue",
]


class IncidentWriter(Protocol):
    """Writes of one notification's incident changes, inside one serialized transaction."""

    notification_id: int
    now: str

    def alert_state_seen(self, fingerprint: str, status: str, starts_at: str | None) -> bool: ...

    def record_alert(
        self,
        *,
        fingerprint: str,
        alertname: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        status: str,
        starts_at: str | None,
        ends_at: str | None,
        generator_url: str,
    ) -> None:
        """Upsert the alert's current state and add its (fingerprint, status, startsAt) history row."""

    def find_live_incident(self, runbook_id: str, incident_key: str) -> IncidentRecord | None: ...

    def live_incident_for_alert(self, fingerprint: str) -> IncidentRecord | None: ...

    def create_incident(
        self,
        *,
        runbook_id: str,
        incident_key: str,
        title: str,
        model: str | None,
        group_labels: Mapping[str, str],
        severity: str,
    ) -> IncidentRecord: ...

    def upsert_incident_alert(
        self, incident_id: int, fingerprint: str, status: str, starts_at: str | None, ends_at: str | None
    ) -> None: ...

    def incident_alert_counts(self, incident_id: int) -> tuple[int, int]:
        """(firing, total) alerts of the incident."""

    def set_severity(self, incident_id: int, severity: str) -> None: ...

    def set_state(self, incident_id: int, state: str) -> None: ...

    def add_timeline(
        self,
        incident_id: int,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        """Append an entry; returns False (and adds nothing) if ``dedupe_key`` is already on the incident."""


class IngestQueue(Protocol):
    """Notifications in: durable intake, then apply and respond in order within each group."""

    def record_notification(self, body: bytes, group_key: str | None = None) -> int:
        """Commit the raw body durably and return its id; raises StoreUnavailable."""

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
        """Keep a refused body (truncated to a cap); ``body_size``: full size when only a head was read."""

    def list_rejected(self, *, limit: int = 50, before_id: int | None = None) -> list[RejectedRecord]: ...

    def next_received(self) -> NotificationRecord | None:
        """The oldest notification that may be applied now (first of its group still waiting, and due)."""

    def apply_next(
        self, fn: Callable[[NotificationRecord, IncidentWriter], list[dict[str, Any]]]
    ) -> tuple[NotificationRecord, list[dict[str, Any]] | None] | None:
        """Claim the next notification to apply and run ``fn`` on it in one transaction."""

    def apply(
        self, notification_id: int, fn: Callable[[IncidentWriter], list[dict[str, Any]]]
    ) -> list[dict[str, Any]] | None:
        """Run ``fn`` and mark the notification applied, in one transaction; None if already applied."""

    def claim_applied(self, lease_seconds: float = 30.0) -> NotificationRecord | None:
        """Lease the oldest applied notification whose group has nothing earlier still pending."""

    def renew(self, notification_id: int, lease_seconds: float) -> None: ...

    def mark_done(self, notification_id: int) -> None: ...

    def mark_retry(self, notification_id: int, error: str, *, delay: float, max_attempts: int) -> str:
        """Record a failed attempt; returns the new state (``failed`` once attempts are exhausted)."""

    def pending_count(self) -> int: ...

    def oldest_pending_ts(self) -> float | None:
        """When the oldest notification not yet applied and responded to was received (unix seconds);
        None when nothing waits. The engine's own backlog alert reads its age."""

    def notification_counts(self) -> dict[str, int]: ...

    def watch(self, on_new: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_new`` soon after any process commits a notification (PostgreSQL: LISTEN; SQLite:
        never, its workers poll); returns the function that stops watching."""


class IncidentStore(Protocol):
    """Incidents, alerts and timeline outside notification processing (reads, people, responder)."""

    def list_incidents(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        runbook: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[IncidentRecord]: ...

    def get_incident(self, incident_id: int) -> IncidentDetail:
        """Raises :class:`receiver.errors.NotFound`."""

    def incident_counts(self) -> dict[tuple[str, str], int]: ...

    def has_timeline(self, incident_id: int, dedupe_key: str) -> bool: ...

    def add_timeline(
        self,
        incident_id: int,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> bool: ...

    def transition(
        self,
        incident_id: int,
        to_state: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        allowed_from: tuple[str, ...] | None = None,
    ) -> bool:
        """The one place the lifecycle moves; raises InvalidTransition for a forbidden move."""

    def record_contained(
        self, incident_id: int, message: str, data: Mapping[str, Any] | None = None
    ) -> bool: ...

    def acknowledge(self, incident_id: int, actor: str, note: str = "") -> bool: ...

    def mark_escalated(self, incident_id: int) -> bool: ...

    def raise_severity(self, incident_id: int, level: str, reason: str) -> bool: ...


class Store(IngestQueue, IncidentStore, Protocol):
    """The whole store: ingest and incidents directly (the web layer's view), the other aggregates as
    attributes (each a narrow protocol), plus health and schema."""

    @property
    def ingest(self) -> IngestQueue: ...

    @property
    def incidents(self) -> IncidentStore: ...

    @property
    def timers(self) -> TimerQueue: ...

    @property
    def ledger(self) -> ActionLedger: ...

    @property
    def outbox(self) -> OutboxRows: ...

    @property
    def retention(self) -> RetentionRows: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def approvals(self) -> ApprovalRows: ...

    @property
    def chat_threads(self) -> ChatThreads: ...

    @property
    def inbound(self) -> InboundRows: ...

    @property
    def description(self) -> str:
        """Where the data is (a path, or a URL without its password)."""

    @property
    def dialect(self) -> str: ...

    def check_writable(self) -> None:
        """Raise StoreUnavailable if a write cannot commit right now."""

    def check_schema(self) -> None:
        """Raise StoreError unless the database is at the schema this code expects."""

    def close(self) -> None: ...
