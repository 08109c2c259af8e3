"""Shared by the registry-backed kinds (rollback, traffic_split, fallback, guardrail): the audit reason,
and the mapping of registry errors to action outcomes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from receiver.actions.base import ActionContext
from receiver.errors import ActionError, ActionTransient, RegistryError, RegistryUnavailableError

__all__ = ["audit_reason", "call_registry", "optional_reason"]

T = TypeVar("T")


def audit_reason(ctx: ActionContext, params: Mapping[str, Any]) -> str:
    """The reason written to the registry's audit history: which incident, runbook and step did it."""
    parts = [f"incident {ctx.incident_id}"]
    if ctx.runbook_id:
        parts.append(f"runbook {ctx.runbook_id}")
    if ctx.step_id:
        parts.append(f"step {ctx.step_id}")
    text = ", ".join(parts)
    extra = params.get("reason")
    return f"{text}: {extra}" if extra else text


def call_registry(what: str, fn: Callable[[], T]) -> T:
    """Run a registry call; an unavailable registry is retryable, other registry errors are not."""
    try:
        return fn()
    except RegistryUnavailableError as exc:
        raise ActionTransient(f"{what}: registry unavailable: {exc.message}") from exc
    except RegistryError as exc:
        raise ActionError(f"{what}: registry refused: {exc.message}", exc.problems) from exc


def optional_reason(params: Mapping[str, Any], kind: str) -> str | None:
    reason = params.get("reason")
    if reason is not None and not isinstance(reason, str):
        from receiver.errors import ActionParamError

        raise ActionParamError(f"{kind}: 'reason' must be a string, got {reason!r}")
    return reason
