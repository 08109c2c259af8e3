"""``rollback``: mark the active version unhealthy and make the last known good version active.

Preconditions (``preconditions: {max_active_age: 2h, require_last_known_good: true}``) keep a rollback from
being used against a problem that predates the release. The registry call passes ``expected_active`` so a
rollback racing another change fails instead of rolling back the wrong version. With no healthy version to
fall back to the registry refuses, and so does this action (``refused`` + escalation): nothing is left
without an active version.

Recovery: none. A rollback is not undone automatically; a human promotes the fixed version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.actions.base import ActionContext, ActionResult, BaseAction, parse_duration, require_model
from receiver.actions.serving import (
    audit_reason,
    call_registry,
    describe_state,
    optional_reason,
    read_snapshot,
)
from receiver.errors import ActionParamError, ConflictError, NoHealthyFallbackError

__all__ = ["RollbackAction"]


class RollbackAction(BaseAction):
    kind = "rollback"
    containment = True
    idempotent = False
    recoverable = True

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        flat = {"max_active_age", "require_last_known_good"}  # the normalised form validates again
        unknown = set(params) - {"to", "preconditions", "reason"} - flat
        if unknown:
            raise ActionParamError(f"rollback: unknown parameter(s) {', '.join(sorted(unknown))}")
        if params.get("to", "last_known_good") != "last_known_good":
            raise ActionParamError(f"rollback: 'to' must be 'last_known_good', got {params.get('to')!r}")
        pre = params.get("preconditions") or {k: params[k] for k in flat if params.get(k) is not None}
        if not isinstance(pre, Mapping):
            raise ActionParamError(f"rollback: 'preconditions' must be a mapping, got {pre!r}")
        unknown = set(pre) - {"max_active_age", "require_last_known_good"}
        if unknown:
            raise ActionParamError(f"rollback: unknown precondition(s) {', '.join(sorted(unknown))}")
        max_age = pre.get("max_active_age")
        require_lkg = pre.get("require_last_known_good", True)
        if not isinstance(require_lkg, bool):
            raise ActionParamError("rollback: preconditions.require_last_known_good must be true or false")
        return {
            "to": "last_known_good",
            "max_active_age": None
            if max_age is None
            else parse_duration(max_age, "rollback: preconditions.max_active_age"),
            "require_last_known_good": require_lkg,
            "reason": optional_reason(params, self.kind),
        }

    def snapshot(self, params: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            model = require_model(ctx, self.kind)
            state = call_registry("rollback", lambda: ctx.open_registry().state(model))
            return {"active_version": state.active_version, "last_known_good": state.last_known_good}

        return read_snapshot("rollback", read)

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        state = call_registry("rollback", lambda: registry.state(model))
        # the version active before the first attempt: a retry after a lost race must not roll back the
        # version the winner rolled back to (two concurrent rollbacks give exactly one)
        active = (
            snapshot.get("active_version", state.active_version)
            if "unavailable" not in snapshot
            else state.active_version
        )
        if active != state.active_version:
            return ActionResult.refused(
                f"rollback refused: the active version of {model} changed from {active} to "
                f"{state.active_version} since this rollback started (another change got in first)",
                active_version=state.active_version,
            )
        max_age = params.get("max_active_age")
        if max_age is not None:
            if state.active_since is None:
                return ActionResult.skipped(
                    f"precondition: {model} has no promotion time for {active}; max_active_age cannot hold",
                    active_version=active,
                )
            age = (ctx.now - state.active_since).total_seconds()
            if age > max_age:
                return ActionResult.skipped(
                    f"precondition: {model} {active} was promoted {age / 60:.0f} min ago, more than "
                    f"max_active_age {max_age / 60:g} min; the problem likely predates the release",
                    active_version=active,
                    active_age_seconds=round(age, 1),
                )
        if params.get("require_last_known_good", True) and state.last_known_good is None:
            return ActionResult.refused(
                f"rollback refused: {model} has no last known good version; {active} stays active",
                active_version=active,
            )

        def attempt() -> tuple[Any, NoHealthyFallbackError | ConflictError | None]:
            try:
                return registry.rollback(
                    model, actor=ctx.settings.actor, reason=audit_reason(ctx, params), expected_active=active
                ), None
            except (NoHealthyFallbackError, ConflictError) as exc:
                return None, exc

        result, refusal = call_registry("rollback", attempt)
        if isinstance(refusal, NoHealthyFallbackError):
            return ActionResult.refused(
                f"rollback refused: {refusal.message}; {model} stays on {active}", active_version=active
            )
        if refusal is not None:
            return ActionResult.refused(
                f"rollback refused: the active version of {model} changed concurrently ({refusal.message})",
                active_version=active,
            )
        where = describe_state(registry, result.state)
        return ActionResult(
            "succeeded",
            f"rolled {model} back from {result.from_version} to {result.to_version} ({where})",
            {"from_version": result.from_version, "to_version": result.to_version, "registry": where},
        )

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        return ActionResult.skipped(
            f"rollback is not undone automatically; promote {prior.get('from_version')} again by hand "
            "once it is fixed",
            **dict(prior),
        )
