"""The response sections of a runbook, typed at load time: ``verify``, ``escalate``, ``comms``, evidence.

The responder, the status builder and the console read these instead of the raw document, so a default
(``verify.for`` 5m, ``verify.timeout`` and ``comms.cadence`` 30m, as ``runbooks/runbook.schema.json``
documents them) lives in exactly one place and a duration is parsed once, when the runbook loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from receiver.runbooks.durations import parse_duration

__all__ = ["Comms", "Duration", "Escalate", "EvidenceQuery", "Verify"]


@dataclass(frozen=True)
class Duration:
    """A runbook duration: the text as written (for people) and its seconds (for timers)."""

    text: str
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Duration:
        return cls(text, parse_duration(text))


@dataclass(frozen=True)
class Verify:
    """Containment holds when ``query`` returns a non-empty result continuously for ``for_``."""

    query: str
    for_: Duration = field(default_factory=lambda: Duration("5m", 300.0))
    timeout: Duration = field(default_factory=lambda: Duration("30m", 1800.0))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Verify:
        return cls(
            query=str(raw["query"]),
            for_=Duration.parse(raw.get("for", "5m")),
            timeout=Duration.parse(raw.get("timeout", "30m")),
        )


@dataclass(frozen=True)
class Escalate:
    """Escalate to ``to`` when nobody acknowledges within ``after`` (or containment fails)."""

    after: Duration
    to: str
    page: bool = False
    upgrade_to: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Escalate:
        upgrade = raw.get("upgrade_to")
        return cls(
            after=Duration.parse(raw["after"]),
            to=str(raw["to"]),
            page=bool(raw.get("page", False)),
            upgrade_to=str(upgrade) if upgrade else None,
        )


@dataclass(frozen=True)
class Comms:
    """Where status updates go, how often while the incident is open, and per-event templates."""

    channels: tuple[str, ...] = ()
    cadence: Duration = field(default_factory=lambda: Duration("30m", 1800.0))
    templates: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Comms:
        templates = raw.get("templates")
        return cls(
            channels=tuple(str(name) for name in raw.get("channels") or ()),
            cadence=Duration.parse(raw.get("cadence", "30m")),
            templates=dict(templates) if isinstance(templates, Mapping) else None,
        )


@dataclass(frozen=True)
class EvidenceQuery:
    """One ``{name, query, unit?}`` evidence entry."""

    name: str
    query: str
    unit: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> EvidenceQuery:
        unit = raw.get("unit")
        return cls(name=str(raw["name"]), query=str(raw["query"]), unit=str(unit) if unit else None)
