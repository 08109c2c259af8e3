"""The protocols of the aggregates :class:`~receiver.store.base.Store` holds as attributes.

The web layer talks to ingest and incidents directly (:mod:`receiver.store.base`); the background work (the
scheduler, the executor, the outbox, retention, the console's sessions, approval gates, Slack threads and
signed inbound requests) reaches its aggregate through ``store.timers``, ``store.ledger`` and so on. Their
protocols live here so that base.py stays the web layer's view; base.py re-exports every name.

* :class:`TimerQueue`: durable timers (verify, escalate, update) claimed with leases.
* :class:`ActionLedger`: exactly-once claims of action steps.
* :class:`OutboxRows`: queued messages, handed out head-first per channel.
* :class:`RetentionRows`: pruning old bodies and closed incidents (keeping summaries and reviews).
* :class:`SessionStore`: the console's sign-in sessions.
* :class:`ApprovalRows`: approval gates; the first decision wins once. :class:`ChatThreads`: Slack threads.
  :class:`InboundRows`: signed Slack/PagerDuty requests, recorded before the answer, acted on once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from receiver.store.records import (
    TIMER_KINDS,
    Approval,
    ChatThread,
    Claim,
    GuardPolicy,
    InboundEvent,
    LedgerKey,
    LedgerRow,
    OutboxMessage,
    Timer,
)
from receiver.store.retention import ArchivedReview, ReviewToArchive
from receiver.store.sessions import ConsoleSession

__all__ = [
    "ActionLedger",
    "ApprovalRows",
    "ChatThreads",
    "InboundRows",
    "OutboxRows",
    "RetentionRows",
    "SessionStore",
    "TimerQueue",
]


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

    def oldest_pending_at(self) -> float | None:
        """When the oldest message still to be delivered was queued (unix seconds); None when none is."""

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
