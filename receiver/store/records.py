"""The store's records: plain frozen data, the same from either backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "APPROVAL_STATES",
    "FINAL_STATES",
    "TIMER_KINDS",
    "AlertRecord",
    "Approval",
    "ChatThread",
    "Claim",
    "GuardPolicy",
    "InboundEvent",
    "IncidentDetail",
    "IncidentRecord",
    "LedgerKey",
    "LedgerRow",
    "NotificationRecord",
    "OutboxMessage",
    "RejectedRecord",
    "TimelineEntry",
    "Timer",
]


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: int
    received_at: str
    received_ts: float
    body: bytes
    state: str
    attempts: int
    events: list[dict[str, Any]] | None = None
    last_error: str | None = None
    group_key: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    id: int
    received_at: str
    status: int
    reason: str
    problems: list[str]
    content_type: str | None
    body_size: int
    body: bytes
    truncated: bool


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    id: int
    runbook_id: str
    incident_key: str
    title: str
    model: str | None
    group_labels: dict[str, str]
    state: str
    severity: str
    opened_at: str
    updated_at: str
    resolved_at: str | None = None
    closed_at: str | None = None
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    contained_at: str | None = None
    escalated_at: str | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    fingerprint: str
    alertname: str
    status: str
    starts_at: str | None
    ends_at: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str = ""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    id: int
    incident_id: int
    at: str
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    notification_id: int | None = None


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: IncidentRecord
    alerts: list[AlertRecord]
    timeline: list[TimelineEntry]


TIMER_KINDS = ("verify", "escalate", "update", "upgrade", "approval")


@dataclass(frozen=True, slots=True)
class Timer:
    id: int
    incident_id: int
    kind: str
    due_ts: float
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


#: a ledger row in one of these states is finished; ``unknown``: the request may or may not have landed
FINAL_STATES = frozenset({"succeeded", "failed", "refused", "skipped", "dry_run", "interrupted", "unknown"})


@dataclass(frozen=True)
class LedgerKey:
    incident_id: str
    phase: str
    step_id: str
    kind: str


@dataclass(frozen=True)
class LedgerRow:
    id: int
    key: LedgerKey
    model: str
    runbook_id: str
    state: str
    reason: str | None
    automatic: bool
    containment: bool
    params: dict[str, Any]
    snapshot: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    owner: str
    lease_until: float | None
    created_at: float
    updated_at: float
    finished_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.key.incident_id,
            "phase": self.key.phase,
            "step_id": self.key.step_id,
            "kind": self.key.kind,
            "model": self.model,
            "runbook_id": self.runbook_id,
            "state": self.state,
            "reason": self.reason,
            "automatic": self.automatic,
            "params": self.params,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class GuardPolicy:
    """Cooldown and flap guard for automatic containments on one model (``flap_max`` 0 disables it)."""

    cooldown_seconds: float = 600.0
    flap_max: int = 3
    flap_window_seconds: float = 3600.0


@dataclass(frozen=True)
class Claim:
    """``status``: ``won`` (run it), ``duplicate`` (someone already has it), ``dry_run``, or ``skipped``."""

    status: Literal["won", "duplicate", "dry_run", "skipped"]
    row: LedgerRow


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    incident_id: str
    channel: str
    dedupe_key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    last_status: int | None
    created_at: float
    delivered_at: float | None
    failed_at: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "channel": self.channel,
            "dedupe_key": self.dedupe_key,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "last_status": self.last_status,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
            "failed_at": self.failed_at,
        }


#: ``pending`` until the first decision (a person's, or the timeout's: ``expired``)
APPROVAL_STATES = ("pending", "approved", "denied", "expired")


@dataclass(frozen=True)
class Approval:
    """A gated runbook step waiting for (or past) a human decision; one per (incident, phase, step)."""

    id: int
    incident_id: int
    phase: str
    step_id: str
    kind: str
    summary: str
    role: str
    state: str  # pending|approved|denied|expired
    requested_at: str
    timeout_at: str
    on_timeout: str  # proceed|skip
    decided_by: str | None
    decided_at: str | None
    reason: str | None

    @property
    def runs_step(self) -> bool:
        """Whether the decision lets the gated step run (approved, or timed out with ``proceed``)."""
        return self.state == "approved" or (self.state == "expired" and self.on_timeout == "proceed")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "phase": self.phase,
            "step_id": self.step_id,
            "kind": self.kind,
            "summary": self.summary,
            "role": self.role,
            "state": self.state,
            "requested_at": self.requested_at,
            "timeout_at": self.timeout_at,
            "on_timeout": self.on_timeout,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ChatThread:
    """Where an incident's first chat message went (Slack app mode): later updates reply in its thread."""

    channel: str
    incident_id: int
    conversation: str
    thread_ts: str


@dataclass(frozen=True)
class InboundEvent:
    """A signed request from Slack or PagerDuty, recorded before the answer and acted on by a worker."""

    id: int
    source: str
    dedupe_key: str
    payload: dict[str, Any]
    state: str
    attempts: int
