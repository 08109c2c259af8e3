"""``fallback``: switch a model's serving mode to ``fallback`` (rules, cached features, safe defaults).

``{action: fallback, enabled: true}`` in containment; recovery restores the mode recorded before the switch
(normally ``normal``). Idempotent: the target mode is absolute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.actions.base import ActionContext, ActionResult, BaseAction, require_model
from receiver.actions.serving import (
    audit_reason,
    call_registry,
    describe_state,
    optional_reason,
    read_snapshot,
)
from receiver.errors import ActionParamError

__all__ = ["FallbackAction"]


class FallbackAction(BaseAction):
    kind = "fallback"
    containment = True
    idempotent = True
    recoverable = True

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"enabled", "reason"}
        if unknown:
            raise ActionParamError(f"fallback: unknown parameter(s) {', '.join(sorted(unknown))}")
        enabled = params.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ActionParamError(f"fallback: 'enabled' must be true or false, got {enabled!r}")
        return {"enabled": enabled, "reason": optional_reason(params, self.kind)}

    def snapshot(self, params: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            model = require_model(ctx, self.kind)
            state = call_registry("fallback", lambda: ctx.open_registry().state(model))
            return {"mode": state.mode}

        return read_snapshot("fallback", read)

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        target = "fallback" if params["enabled"] else "normal"
        return self._set(ctx, params, target)

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        model = require_model(ctx, self.kind)
        target = "fallback" if params["enabled"] else "normal"
        state = call_registry("fallback", lambda: ctx.open_registry().state(model))
        if state.mode == target:
            return ActionResult(
                "succeeded",
                f"{model}: mode {target} had been set before the restart",
                {"previous_mode": snapshot.get("mode"), "mode": target},
            )
        if state.mode == snapshot.get("mode"):
            return self._set(ctx, params, target)
        return None

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        return self._set(ctx, params, str(prior.get("previous_mode") or "normal"))

    def _set(self, ctx: ActionContext, params: Mapping[str, Any], target: str) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        state = call_registry("fallback", lambda: registry.state(model))
        data = {"previous_mode": state.mode, "mode": target}
        if state.mode == target:
            return ActionResult("succeeded", f"{model} is already in {target} mode", data)
        new = call_registry(
            "fallback",
            lambda: registry.set_mode(
                model, target, actor=ctx.settings.actor, reason=audit_reason(ctx, params)
            ),
        )
        return ActionResult(
            "succeeded",
            f"{model}: serving mode {state.mode} -> {target} ({describe_state(registry, new)})",
            data,
        )
