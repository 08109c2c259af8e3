"""The durable store's interface: small enough that a PostgreSQL implementation can follow the SQLite one.

Two protocols. :class:`Store` is what the web layer, the worker and the read API use. :class:`IncidentWriter`
is what :mod:`receiver.incidents` sees *inside* one serialized transaction (``Store.apply``): everything it
writes for one notification commits together with the notification's change of state, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AlertRecord",
    "IncidentDetail",
    "IncidentRecord",
    "IncidentWriter",
    "NotificationRecord",
    "RejectedRecord",
    "Store",
    "TimelineEntry",
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


class Store(Protocol):
    """Notifications in, incidents out. Every write method commits before it returns."""

    def record_notification(self, body: bytes, group_key: str | None = None) -> int:
        """Commit the raw body durably (fsync) and return its id; raises StoreUnavailable."""

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
        """The oldest notification not yet applied whose retry time has come (strict arrival order)."""

    def apply(
        self, notification_id: int, fn: Callable[[IncidentWriter], list[dict[str, Any]]]
    ) -> list[dict[str, Any]] | None:
        """Run ``fn`` and mark the notification applied with its events, in one serialized transaction.

        Returns ``None`` if another worker applied it first (nothing is written twice).
        """

    def claim_applied(self, lease_seconds: float = 30.0) -> NotificationRecord | None:
        """Lease the oldest applied-but-not-responded notification that is due."""

    def mark_done(self, notification_id: int) -> None: ...

    def mark_retry(self, notification_id: int, error: str, *, delay: float, max_attempts: int) -> str:
        """Record a failed attempt; returns the new state (``failed`` once attempts are exhausted)."""

    def pending_count(self) -> int: ...

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

    def check_writable(self) -> None:
        """Raise StoreUnavailable if a write cannot commit right now."""

    def close(self) -> None: ...
