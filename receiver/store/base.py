"""The durable store's interface: records, and one narrow protocol per aggregate.

Everything above ``receiver/store/`` depends on these protocols, never on a backend; SQLite and PostgreSQL
implement them with the same SQL (:mod:`receiver.store.sql`) and pass one contract suite.

* :class:`IngestQueue`: raw notifications (durable before the 200), their processing, rejected bodies.
* :class:`IncidentWriter`: what :mod:`receiver.incidents` sees *inside* one notification's transaction.
* :class:`IncidentStore`: incidents, alerts and timeline; the lifecycle is enforced in its ``transition``.
* :class:`TimerQueue`: durable timers (verify, escalate, update) claimed with leases.
* :class:`ActionLedger`: exactly-once claims of action steps.
* :class:`OutboxRows`: queued messages, handed out head-first per channel.
* :class:`RetentionRows`: pruning old bodies and closed incidents (keeping summaries and reviews).
* :class:`SessionStore`: the console's sign-in sessions.
* :class:`ApprovalRows`: approval gates; the first decision wins once. :class:`ChatThreads`: Slack threads.
  :class:`InboundRows`: signed Slack/PagerDuty requests, recorded before the answer, acted on once.
* :class:`Store`: the whole, as the app, the worker and the CLI hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

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


class TimerQueue(Protocol):
    def schedule(
        self,
        incident_id: int,
        kind: str,
        due_ts: float,
        payload: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
    ) -> bool: ...

    def claim_due(
        self, now: float | None = None, *, lease_seconds: float = 15.0, limit: int = 20
    ) -> list[Timer]: ...

    def renew(self, timer_id: int, lease_seconds: float) -> None: ...

    def complete(self, timer_id: int) -> None: ...

    def reschedule(
        self, timer_id: int, due_ts: float, payload: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None: ...

    def cancel(self, incident_id: int, kinds: tuple[str, ...] = TIMER_KINDS) -> int: ...

    def pending(self, incident_id: int | None = None) -> list[Timer]: ...


class ActionLedger(Protocol):
    def get(self, key: LedgerKey) -> LedgerRow | None: ...

    def rows(self, incident_id: str, phase: str | None = None) -> list[LedgerRow]: ...

    def expired(self, now: float) -> list[LedgerRow]: ...

    def claim(
        self,
        key: LedgerKey,
        *,
        model: str,
        runbook_id: str,
        params: Mapping[str, Any],
        owner: str,
        now: float,
        lease_until: float,
        containment: bool,
        automatic: bool,
        dry_run: bool,
        guard: GuardPolicy | None,
    ) -> Claim: ...

    def start(self, row_id: int, *, snapshot: Mapping[str, Any], now: float, lease_until: float) -> None: ...

    def attempt(self, row_id: int, *, attempts: int, now: float, lease_until: float) -> None: ...

    def renew(self, row_id: int, *, owner: str, lease_until: float) -> bool: ...

    def finish(
        self,
        row_id: int,
        state: str,
        *,
        now: float,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        reason: str | None = None,
        attempts: int | None = None,
    ) -> None: ...

    def take_over(self, row: LedgerRow, *, owner: str, now: float, lease_until: float) -> bool: ...


class OutboxRows(Protocol):
    def enqueue(self, incident_id: str, channel: str, body: str, dedupe_key: str, now: float) -> bool: ...

    def claim_head(self, now: float, blocked: set[str], lease_s: float) -> OutboxMessage | None: ...

    def renew(self, message_id: int, lease_until: float) -> None: ...

    def release(self, message_id: int, error: str) -> None: ...

    def mark_delivered(self, message_id: int, status: int, now: float) -> None: ...

    def mark_retry(
        self, message_id: int, attempts: int, next_attempt_at: float, error: str, status: int | None
    ) -> None: ...

    def mark_failed(
        self, message_id: int, attempts: int, now: float, error: str, status: int | None
    ) -> None: ...

    def pending_count(self) -> int: ...

    def select(
        self, *, status: str | None = None, channel: str | None = None, incident_id: str | None = None
    ) -> list[OutboxMessage]: ...

    def requeue(self, message_id: int, now: float) -> tuple[OutboxMessage, int]: ...


class RetentionRows(Protocol):
    """Pruning past a cut-off (unix seconds); every call is one short, idempotent batch (see
    :mod:`receiver.store.retention`)."""

    def prune_notification_bodies(self, before_ts: float, *, limit: int = 500) -> int: ...

    def prune_rejected_bodies(self, before_ts: float, *, limit: int = 500) -> int: ...

    def incidents_to_archive(
        self, closed_before_ts: float, *, after_id: int = 0, limit: int = 50
    ) -> list[int]: ...

    def archive_incidents(self, reviews: Sequence[ReviewToArchive], closed_before_ts: float) -> list[int]: ...

    def archived_review(self, incident_id: int) -> ArchivedReview | None: ...

    def archived_count(self) -> int: ...

    def try_lease(self, name: str, owner: str, lease_seconds: float) -> bool: ...

    def release_lease(self, name: str, owner: str) -> None: ...


class SessionStore(Protocol):
    """The console's sign-in sessions (:mod:`receiver.store.sessions`), keyed by a hash of the token."""

    def create(
        self, token: str, *, username: str, role: str, method: str, csrf_token: str, lifetime: float
    ) -> ConsoleSession: ...

    def get(self, token: str) -> ConsoleSession | None: ...

    def delete(self, token: str) -> bool: ...

    def prune(self) -> int: ...


class ApprovalRows(Protocol):
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
        """Idempotent per (incident, phase, step); True when this call created the approval."""

    def get(self, approval_id: int) -> Approval:
        """Raises :class:`receiver.errors.NotFound`."""

    def find(self, incident_id: int, phase: str, step_id: str) -> Approval | None: ...

    def step_of(self, approval_id: int) -> dict[str, Any]: ...

    def for_incident(self, incident_id: int) -> list[Approval]: ...

    def pending(self, incident_id: int | None = None) -> list[Approval]: ...

    def decide(self, approval_id: int, decision: str, actor: str, reason: str = "") -> tuple[Approval, bool]:
        """The first decision wins exactly once (a conditional UPDATE on ``state = 'pending'``)."""

    def expire_due(self, now: float | None = None, incident_id: int | None = None) -> list[Approval]: ...

    def next_timeout(self, incident_id: int) -> float | None: ...

    def unapplied(self, limit: int = 50) -> list[Approval]: ...

    def mark_applied(self, approval_id: int) -> bool: ...


class ChatThreads(Protocol):
    def get(self, channel: str, incident_id: int) -> ChatThread | None: ...

    def remember(self, channel: str, incident_id: int, conversation: str, thread_ts: str) -> ChatThread: ...


class InboundRows(Protocol):
    def record(self, source: str, dedupe_key: str, payload: Mapping[str, Any]) -> int | None:
        """The new row's id, or None for a (source, key) seen before."""

    def claim(self, lease_seconds: float = 30.0, limit: int = 20) -> list[InboundEvent]: ...

    def finish(self, event_id: int, state: str = "done", error: str | None = None) -> None: ...

    def retry(self, event_id: int, error: str, delay: float) -> None: ...

    def state_of(self, event_id: int) -> str: ...

    def incident_for_key(self, incident_key: str) -> int | None: ...


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
