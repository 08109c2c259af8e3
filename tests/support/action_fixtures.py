"""Helpers for the action tests: a real ledger (the receiver store's, on a SQLite file), a settable clock, a
recording sleeper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from receiver.actions.base import ActionContext, ActionSettings
from receiver.actions.executor import ActionExecutor
from receiver.actions.ledger import Ledger
from receiver.actions.registry import ActionRegistry, default_registry
from receiver.store import SQLiteStore

__all__ = ["Clock", "Sleeper", "make_context", "make_executor", "make_ledger"]


@dataclass
class Clock:
    """Seconds since the epoch, moved by the test."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sleeper:
    """Records backoff delays instead of sleeping, so retry tests stay fast."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_ledger(path: Path) -> Ledger:
    """The ledger of a receiver store on the SQLite file ``path`` (migrated; safe to call again)."""
    store = SQLiteStore(path)
    store.migrate()
    return store.ledger


def make_executor(
    db_path: Path,
    settings: ActionSettings,
    *,
    kinds: ActionRegistry | None = None,
    clock: Callable[[], float] | None = None,
    sleeper: Sleeper | None = None,
    **kwargs: Any,
) -> ActionExecutor:
    return ActionExecutor(
        make_ledger(db_path),
        kinds or default_registry(),
        settings,
        clock=clock or Clock(),
        sleep=sleeper or Sleeper(),
        **kwargs,
    )


def make_context(
    settings: ActionSettings,
    *,
    incident_id: str = "INC-1",
    model: str = "fraud",
    severity: str = "SEV2",
    labels: dict[str, str] | None = None,
    **kwargs: Any,
) -> ActionContext:
    return ActionContext(
        incident_id=incident_id,
        model=model,
        settings=settings,
        runbook_id="feature-drift",
        severity=severity,
        labels=labels if labels is not None else {"model": model, "incident_type": "drift"},
        session=kwargs.pop("session", None) or requests.Session(),
        **kwargs,
    )
