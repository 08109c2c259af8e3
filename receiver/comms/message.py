"""The facts of one status update, independent of wording and channel.

A :class:`StatusUpdate` is what the orchestrator knows at the moment it communicates; templates
(:mod:`receiver.comms.templates`) turn it into words per audience, channels
(:mod:`receiver.comms.channels`) into a payload. It round-trips through JSON so it can sit on the timeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from receiver.evidence import EvidenceSnapshot

__all__ = [
    "AUDIENCES",
    "EVENTS",
    "ActionSummary",
    "Links",
    "ModelVersions",
    "RenderedMessage",
    "StatusUpdate",
]

#: What happened, in the order an incident usually goes through them.
EVENTS: tuple[str, ...] = ("opened", "update", "contained", "escalated", "resolved")
#: ``oncall``: technical, with PromQL and values; ``stakeholder``: plain wording.
AUDIENCES: tuple[str, ...] = ("oncall", "stakeholder")


@dataclass(frozen=True)
class ActionSummary:
    """One containment step and how it went, e.g. ``traffic_split`` / ``succeeded`` / ``50% to v3``."""

    kind: str
    status: str
    detail: str = ""
    at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "detail": self.detail, "at": self.at}


@dataclass(frozen=True)
class ModelVersions:
    """The model and its versions: what serves now, the last known good, and what changed."""

    name: str
    active: str | None = None
    last_known_good: str | None = None
    changed: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "active": self.active,
            "last_known_good": self.last_known_good,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class Links:
    dashboard: str | None = None
    generator: str | None = None
    runbook: str | None = None
    incident: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dashboard": self.dashboard,
            "generator": self.generator,
            "runbook": self.runbook,
            "incident": self.incident,
        }

    def items(self) -> list[tuple[str, str]]:
        """``(label, url)`` for the links that are set, in display order."""
        named = [
            ("Incident", self.incident),
            ("Dashboard", self.dashboard),
            ("Runbook", self.runbook),
            ("Alert source", self.generator),
        ]
        return [(label, url) for label, url in named if url]


@dataclass(frozen=True)
class StatusUpdate:
    """Everything a status update may say. ``labels``/``annotations`` are alert data, never templates."""

    incident_id: str
    event: str
    severity: str
    state: str
    title: str
    model: ModelVersions
    impact: str = ""
    summary: str = ""
    actions: Sequence[ActionSummary] = ()
    evidence: Sequence[EvidenceSnapshot] = ()
    owners: Mapping[str, str] = field(default_factory=dict)
    next_update_at: datetime | None = None
    links: Links = field(default_factory=Links)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    sequence: int = 0
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(
                f"unknown status update event {self.event!r}; expected one of {', '.join(EVENTS)}"
            )

    @property
    def next_update_text(self) -> str:
        if self.next_update_at is None:
            return "no further scheduled update" if self.event == "resolved" else "when something changes"
        return self.next_update_at.astimezone(UTC).strftime("%H:%M UTC")

    def dedupe_key(self, channel: str, audience: str) -> str:
        """Stable identity of this message on one channel: the same update is never queued twice."""
        return f"{self.incident_id}:{self.event}:{self.sequence}:{channel}:{audience}"

    def to_context(self) -> dict[str, Any]:
        """The template context. Strings from alerts are plain values; Jinja does not re-render them."""
        return {
            "incident_id": self.incident_id,
            "event": self.event,
            "severity": self.severity,
            "state": self.state,
            "title": self.title,
            "impact": self.impact,
            "summary": self.summary,
            "model": self.model.to_json(),
            "actions": [a.to_json() for a in self.actions],
            "evidence": [{**e.to_json(), "display": e.display()} for e in self.evidence],
            "owners": dict(self.owners),
            "next_update": self.next_update_text,
            "next_update_at": self.next_update_at.isoformat() if self.next_update_at else None,
            "links": self.links.to_json(),
            "incident_url": self.links.incident,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "sequence": self.sequence,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "event": self.event,
            "severity": self.severity,
            "state": self.state,
            "title": self.title,
            "model": self.model.to_json(),
            "impact": self.impact,
            "summary": self.summary,
            "actions": [a.to_json() for a in self.actions],
            "evidence": [e.to_json() for e in self.evidence],
            "owners": dict(self.owners),
            "next_update_at": self.next_update_at.isoformat() if self.next_update_at else None,
            "links": self.links.to_json(),
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "sequence": self.sequence,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatusUpdate:
        nxt = data.get("next_update_at")
        created = data.get("created_at")
        return cls(
            incident_id=str(data["incident_id"]),
            event=str(data["event"]),
            severity=str(data["severity"]),
            state=str(data["state"]),
            title=str(data["title"]),
            model=ModelVersions(**data["model"]),
            impact=str(data.get("impact", "")),
            summary=str(data.get("summary", "")),
            actions=tuple(ActionSummary(**a) for a in data.get("actions", [])),
            evidence=tuple(EvidenceSnapshot.from_json(e) for e in data.get("evidence", [])),
            owners=dict(data.get("owners", {})),
            next_update_at=datetime.fromisoformat(nxt) if nxt else None,
            links=Links(**data.get("links", {})),
            labels=dict(data.get("labels", {})),
            annotations=dict(data.get("annotations", {})),
            sequence=int(data.get("sequence", 0)),
            created_at=datetime.fromisoformat(created) if created else datetime.now(UTC),
        )


@dataclass(frozen=True)
class RenderedMessage:
    """Words for one audience. ``fallback`` is True when the template failed and ``error`` says why."""

    audience: str
    title: str
    text: str
    update: StatusUpdate
    fallback: bool = False
    error: str | None = None
