"""``guardrail``: make an LLM model's moderation stricter - to a ``level`` (0-3) or one step (``raise``).

Containment only ever raises the level (lowering safety is a human decision). The level before is recorded
in the result, and recovery (or ``level: restore`` in a recovery step) returns to it - unless someone changed
the level since, in which case recovery refuses and asks a human. ``block_risky_tools`` is accepted but
the registry has no tool switch yet: the result says so, so a human does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.actions.base import ActionContext, ActionResult, BaseAction, require_model
from receiver.actions.serving import audit_reason, call_registry, optional_reason
from receiver.errors import ActionParamError

__all__ = ["MAX_LEVEL", "GuardrailAction"]

MAX_LEVEL = 3


class GuardrailAction(BaseAction):
    kind = "guardrail"
    containment = True
    idempotent = True
    recoverable = True

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"level", "reason", "block_risky_tools"}
        if unknown:
            raise ActionParamError(f"guardrail: unknown parameter(s) {', '.join(sorted(unknown))}")
        block = params.get("block_risky_tools", False)
        if not isinstance(block, bool):
            raise ActionParamError(f"guardrail: 'block_risky_tools' must be true or false, got {block!r}")
        level = params.get("level", "raise")
        if isinstance(level, str) and level.strip().isdigit():
            level = int(level.strip())
        valid_int = isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= MAX_LEVEL
        if not valid_int and level not in ("raise", "restore"):
            raise ActionParamError(
                f"guardrail: 'level' must be 0-{MAX_LEVEL}, 'raise' or 'restore', got {params.get('level')!r}"
            )
        return {"level": level, "block_risky_tools": block, "reason": optional_reason(params, self.kind)}

    def snapshot(self, params: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
        state = call_registry("guardrail", lambda: ctx.open_registry().state(require_model(ctx, self.kind)))
        return {"level": state.guardrail_level}

    @staticmethod
    def _target(level: Any, current: int) -> int:
        if level == "restore":
            raise ActionParamError("guardrail: level 'restore' is only valid in a recovery step")
        return min(MAX_LEVEL, current + 1) if level == "raise" else int(level)

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        current = int(call_registry("guardrail", lambda: registry.state(model)).guardrail_level)
        target = self._target(params["level"], current)
        data: dict[str, Any] = {"previous_level": current, "level": max(current, target)}
        if params.get("block_risky_tools"):
            # The registry has no tool switch yet: say so on the timeline instead of pretending.
            data["block_risky_tools"] = "requested; not supported by the model registry, block tools by hand"
        if target <= current:
            return ActionResult(
                "succeeded",
                f"{model}: guardrail already at level {current} (asked {target}); "
                "containment never lowers it",
                data,
            )
        call_registry(
            "guardrail",
            lambda: registry.set_guardrail(
                model, target, actor=ctx.settings.actor, reason=audit_reason(ctx, params)
            ),
        )
        return ActionResult("succeeded", f"{model}: guardrail level {current} -> {target}", data)

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        model = require_model(ctx, self.kind)
        before = int(snapshot.get("level", -1))
        target = max(before, self._target(params["level"], before))
        current = int(call_registry("guardrail", lambda: ctx.open_registry().state(model)).guardrail_level)
        if current == target:
            return ActionResult(
                "succeeded",
                f"{model}: guardrail level {target} had been set before the restart",
                {"previous_level": before, "level": target},
            )
        if current == before:
            return self.run(params, ctx, snapshot)
        return None

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        current = int(call_registry("guardrail", lambda: registry.state(model)).guardrail_level)
        previous, set_level = prior.get("previous_level"), prior.get("level")
        if previous is None:
            return ActionResult.skipped(f"{model}: no previous guardrail level recorded; nothing to restore")
        if current != set_level:
            return ActionResult.refused(
                f"guardrail recovery refused: {model} is at level {current}, not {set_level} as set by the "
                f"containment; someone changed it, so it is left as it is",
                level=current,
            )
        if current == previous:
            return ActionResult(
                "succeeded", f"{model}: guardrail already at level {previous}", {"level": previous}
            )
        call_registry(
            "guardrail",
            lambda: registry.set_guardrail(
                model, int(previous), actor=ctx.settings.actor, reason=audit_reason(ctx, params)
            ),
        )
        return ActionResult(
            "succeeded",
            f"{model}: guardrail level {current} -> {previous} (restored)",
            {"level": previous, "previous_level": current},
        )
