"""``guardrail``: make an LLM model's moderation stricter - to a ``level`` (0-3) or one step (``raise``) -
and, with ``block_risky_tools: true``, set the registry's ``tools_blocked`` switch so the model's servers
refuse risky tool calls (web browsing, code execution, email, file writes).

Containment only ever raises the level and only ever blocks tools (lowering safety is a human decision).
The level and the tool setting before are recorded in the result (``previous_level``,
``previous_tools_blocked``), and recovery (or ``level: restore`` in a recovery step) returns to them -
unless someone changed either since (the level is not the one the containment set, or the tools it
blocked are allowed again), in which case recovery refuses, changes nothing and asks a human. Tools that
were already blocked before the incident stay blocked. After a restart mid-containment, a level or tool
setting that is already in place counts as done (see :meth:`GuardrailAction.reconcile`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.actions.base import ActionContext, ActionResult, BaseAction, require_model
from receiver.actions.serving import (
    audit_reason,
    call_registry,
    optional_reason,
    read_snapshot,
    registry_location,
)
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
        def read() -> dict[str, Any]:
            model = require_model(ctx, self.kind)
            state = call_registry("guardrail", lambda: ctx.open_registry().state(model))
            return {"level": state.guardrail_level, "tools_blocked": bool(state.tools_blocked)}

        return read_snapshot("guardrail", read)

    @staticmethod
    def _target(level: Any, current: int) -> int:
        if level == "restore":
            raise ActionParamError("guardrail: level 'restore' is only valid in a recovery step")
        return min(MAX_LEVEL, current + 1) if level == "raise" else int(level)

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        state = call_registry("guardrail", lambda: registry.state(model))
        current = int(state.guardrail_level)
        target = self._target(params["level"], current)
        return self._contain(params, ctx, registry, state, current, bool(state.tools_blocked), target)

    def _contain(
        self,
        params: Mapping[str, Any],
        ctx: ActionContext,
        registry: Any,
        state: Any,
        previous_level: int,
        previous_tools: bool | None,
        target: int,
    ) -> ActionResult:
        """Raise the level to ``target`` (never lower it) and block tools if asked, from ``state``."""
        model = require_model(ctx, self.kind)
        current = int(state.guardrail_level)
        data: dict[str, Any] = {"previous_level": previous_level, "level": max(current, target)}
        if target > current:
            call_registry(
                "guardrail",
                lambda: registry.set_guardrail(
                    model, target, actor=ctx.settings.actor, reason=audit_reason(ctx, params)
                ),
            )
            done = [f"guardrail level {current} -> {target}"]
        else:
            done = [f"guardrail already at level {current} (asked {target}); containment never lowers it"]
        if params.get("block_risky_tools"):
            data.update(previous_tools_blocked=previous_tools, tools_blocked=True)
            if state.tools_blocked:
                done.append("risky tools already blocked")
            else:
                call_registry(
                    "guardrail",
                    lambda: registry.set_tools_blocked(
                        model, True, actor=ctx.settings.actor, reason=audit_reason(ctx, params)
                    ),
                )
                done.append("risky tools blocked")
        if target > current or (params.get("block_risky_tools") and not state.tools_blocked):
            done.append(f"in {registry_location(registry)}")
        return ActionResult("succeeded", f"{model}: " + "; ".join(done), data)

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        """After a restart: each setting is either already in place, untouched since the snapshot (then
        applied now) or changed by someone else (then ``None``: interrupted, a human decides)."""
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        before = int(snapshot.get("level", -1))
        target = max(before, self._target(params["level"], before))
        # None: the snapshot predates the tool switch, so the setting before is unknown.
        before_tools = snapshot.get("tools_blocked")
        block = bool(params.get("block_risky_tools"))
        state = call_registry("guardrail", lambda: registry.state(model))
        current = int(state.guardrail_level)
        if current not in (before, target):
            return None
        if block and before_tools is True and not state.tools_blocked:
            return None  # tools were blocked before and someone allowed them since
        if current == target and (not block or state.tools_blocked):
            data: dict[str, Any] = {"previous_level": before, "level": target}
            if block:
                data.update(previous_tools_blocked=before_tools, tools_blocked=True)
            return ActionResult(
                "succeeded", f"{model}: guardrail level {target} had been set before the restart", data
            )
        return self._contain(params, ctx, registry, state, before, before_tools, target)

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        state = call_registry("guardrail", lambda: registry.state(model))
        current, current_tools = int(state.guardrail_level), bool(state.tools_blocked)
        previous, set_level = prior.get("previous_level"), prior.get("level")
        if previous is None:
            return ActionResult.skipped(f"{model}: no previous guardrail level recorded; nothing to restore")
        # Tools are restored only if the containment blocked them and recorded the setting before.
        set_tools = prior.get("tools_blocked")
        previous_tools = prior.get("previous_tools_blocked")
        changed = []
        if current != set_level:
            changed.append(f"is at level {current}, not {set_level} as set by the containment")
        if set_tools is True and not current_tools:
            changed.append("has risky tools allowed again, not blocked as set by the containment")
        if changed:
            return ActionResult.refused(
                f"guardrail recovery refused: {model} "
                + " and ".join(changed)
                + "; someone changed it, so it is left as it is",
                level=current,
                tools_blocked=current_tools,
            )
        data: dict[str, Any] = {"level": previous, "previous_level": current}
        done = []
        if set_tools is True:
            data.update(tools_blocked=current_tools, previous_tools_blocked=current_tools)
            if previous_tools is False:
                call_registry(
                    "guardrail",
                    lambda: registry.set_tools_blocked(
                        model, False, actor=ctx.settings.actor, reason=audit_reason(ctx, params)
                    ),
                )
                data["tools_blocked"] = False
                done.append("risky tools allowed again (restored)")
            elif previous_tools is None:
                done.append("risky tools left blocked: the setting before the incident was not recorded")
            else:
                done.append("risky tools stay blocked, as before the incident")
        if current == previous:
            done.insert(0, f"guardrail already at level {previous}")
        else:
            call_registry(
                "guardrail",
                lambda: registry.set_guardrail(
                    model, int(previous), actor=ctx.settings.actor, reason=audit_reason(ctx, params)
                ),
            )
            done.insert(0, f"guardrail level {current} -> {previous} (restored)")
        return ActionResult("succeeded", f"{model}: " + "; ".join(done), data)
