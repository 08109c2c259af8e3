"""What one step came to (:class:`StepOutcome`), and the timeline entries that say so as it happens.

Shared by the executor (claims, the restart rule) and the attempt loop (:mod:`receiver.actions.attempts`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from receiver.actions.ledger import LedgerKey
from receiver.errors import ActionError

__all__ = ["StepEvents", "StepOutcome", "action_entry", "describe", "redact"]

_SECRET_KEY = re.compile(r"token|secret|password|passwd|authorization|api[_-]?key|routing[_-]?key", re.I)


@dataclass
class StepOutcome:
    """What happened to one step. ``timeline`` holds the entries for the incident's timeline."""

    key: LedgerKey
    state: str
    summary: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    escalate: str | None = None
    attempts: int = 0
    duplicate: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)


def redact(value: Any) -> Any:
    """Copy of ``value`` with secret-looking keys masked (for the ledger and the timeline)."""
    if isinstance(value, Mapping):
        return {
            k: ("***" if _SECRET_KEY.search(str(k)) and not str(k).endswith("_file") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def action_entry(key: LedgerKey, event: str, at: datetime, **extra: Any) -> dict[str, Any]:
    """A step's timeline entry (``extra`` that is None is left out); the approval desk makes them too."""
    entry = {
        "at": at.isoformat(),
        "type": "action",
        "event": event,
        "incident_id": key.incident_id,
        "phase": key.phase,
        "step_id": key.step_id,
        "action": key.kind,
    }
    entry.update({k: v for k, v in extra.items() if v is not None})
    return entry


class StepEvents:
    """Makes a step's timeline entries (stamped by ``clock``) and hands each to ``on_timeline`` at once."""

    def __init__(
        self, clock: Callable[[], float], on_timeline: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.clock, self.on_timeline = clock, on_timeline

    def entry(self, key: LedgerKey, event: str, **extra: Any) -> dict[str, Any]:
        entry = action_entry(key, event, datetime.fromtimestamp(self.clock(), UTC), **extra)
        if self.on_timeline is not None:
            self.on_timeline(entry)
        return entry


def describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message if isinstance(exc, ActionError) else f"{type(exc).__name__}: {message}"
