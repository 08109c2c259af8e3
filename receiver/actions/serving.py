"""Shared by the registry-backed kinds (rollback, traffic_split, fallback, guardrail): the audit reason,
the mapping of registry errors to action outcomes, and how the registry's state is described.

The kinds never look at which backend they talk to: SQLite and MLflow answer the same
:class:`model_registry.Registry` calls. Errors map the same way on both:

* unavailable (SQLite locked or unreadable; MLflow unreachable, timed out or answering 5xx - the message
  names MLflow and its URL) -> :class:`ActionTransient`: retried by the executor's policy, then failed and
  escalated, never a silent success;
* a lost optimistic race (:class:`WriteConflictError`: nothing was written) -> :class:`ActionTransient` too;
* any other refusal -> :class:`ActionError` (not retried).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from receiver.actions.base import ActionContext
from receiver.errors import (
    ActionError,
    ActionTransient,
    RegistryError,
    RegistryUnavailableError,
    WriteConflictError,
)

__all__ = [
    "audit_reason",
    "call_registry",
    "describe_state",
    "optional_reason",
    "read_snapshot",
    "registry_location",
]

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
    except WriteConflictError as exc:
        message = f"{what}: registry write conflict, will re-read and retry: {exc.message}"
        raise ActionTransient(message) from exc
    except RegistryError as exc:
        raise ActionError(f"{what}: registry refused: {exc.message}", exc.problems) from exc


def optional_reason(params: Mapping[str, Any], kind: str) -> str | None:
    reason = params.get("reason")
    if reason is not None and not isinstance(reason, str):
        from receiver.errors import ActionParamError

        raise ActionParamError(f"{kind}: 'reason' must be a string, got {reason!r}")
    return reason


def read_snapshot(what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The state before acting, or ``{"unavailable": why}`` when the registry cannot be read right now:
    the run itself (retried by the executor) then meets the same error, so an unreachable registry is
    retried and escalated instead of failing before the first attempt. Reconciliation treats such a
    snapshot as unknown (the outcome of an interrupted run is then decided by a human)."""
    try:
        return fn()
    except RegistryUnavailableError as exc:
        return {"unavailable": f"{what}: registry unavailable: {exc.message}"}
    except ActionTransient as exc:  # raised by call_registry for the same reasons
        return {"unavailable": exc.message}


def registry_location(registry: Any) -> str:
    """``MLflow at URL`` or ``registry PATH`` (never credentials)."""
    backend = getattr(registry, "backend", None)
    url = getattr(backend, "url", None)
    return f"MLflow at {url}" if url else f"registry {getattr(backend, 'path', '(injected)')}"


def describe_state(registry: Any, state: Any) -> str:
    """Where the state lives and what it is now, for evidence and status updates: on MLflow the aliases
    (``champion``, ``last-known-good``) as MLflow users see them, on SQLite the file."""
    backend = getattr(registry, "backend", None)
    url = getattr(backend, "url", None)
    lkg = state.last_known_good or "none"
    traffic = ", ".join(f"{v} {w:g}%" for v, w in sorted(state.traffic.items())) or "none"
    if url:
        return (
            f"MLflow at {url}: alias champion={state.active_version or 'none'}, alias last-known-good="
            f"{lkg}, traffic {traffic}, generation {state.generation}"
        )
    where = getattr(backend, "path", "registry")
    return (
        f"registry {where}: active {state.active_version or 'none'}, last known good {lkg}, "
        f"traffic {traffic}, generation {state.generation}"
    )
