"""``traffic_split``: route ``weight`` % of a model's traffic to its last known good version.

Idempotent: the target state is absolute, so after a crash the action compares the registry with the snapshot
taken before it started. Recovery sends 100 % back to the version that was active when the split was made.
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

__all__ = ["TrafficSplitAction"]


def _weight(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ActionParamError(f"traffic_split: 'weight' must be an integer percentage 1-100, got {value!r}")
    return value


def _same(traffic: Mapping[str, float], version: str, weight: float) -> bool:
    return abs(float(traffic.get(version, 0.0)) - weight) < 1e-6


class TrafficSplitAction(BaseAction):
    kind = "traffic_split"
    containment = True
    idempotent = True
    recoverable = True

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"to", "weight", "reason"}
        if unknown:
            raise ActionParamError(f"traffic_split: unknown parameter(s) {', '.join(sorted(unknown))}")
        if "weight" not in params:
            raise ActionParamError("traffic_split: 'weight' is required (percentage to the last known good)")
        if params.get("to", "last_known_good") != "last_known_good":
            raise ActionParamError(f"traffic_split: 'to' must be 'last_known_good', got {params.get('to')!r}")
        return {
            "to": "last_known_good",
            "weight": _weight(params["weight"]),
            "reason": optional_reason(params, self.kind),
        }

    def snapshot(self, params: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            state = call_registry(
                "traffic_split", lambda: ctx.open_registry().state(require_model(ctx, self.kind))
            )
            return {
                "active_version": state.active_version,
                "last_known_good": state.last_known_good,
                "traffic": dict(state.traffic),
            }

        return read_snapshot("traffic_split", read)

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        state = call_registry("traffic_split", lambda: registry.state(model))
        lkg, weight = state.last_known_good, params["weight"]
        if lkg is None:
            return ActionResult.refused(
                f"traffic_split refused: {model} has no last known good version; "
                f"{state.active_version} keeps all traffic",
                active_version=state.active_version,
            )
        data = {
            "active_version": state.active_version,
            "to_version": lkg,
            "weight": weight,
            "previous_traffic": dict(state.traffic),
        }
        if _same(state.traffic, lkg, weight):
            return ActionResult("succeeded", f"{model}: {lkg} already receives {weight}% of traffic", data)
        new = call_registry(
            "traffic_split",
            lambda: registry.split_to_last_known_good(
                model, weight, actor=ctx.settings.actor, reason=audit_reason(ctx, params)
            ),
        )
        data["traffic"] = dict(new.traffic)
        data["registry"] = describe_state(registry, new)
        return ActionResult(
            "succeeded",
            f"{model}: {weight}% of traffic to {lkg} (active {state.active_version}; {data['registry']})",
            data,
        )

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        model = require_model(ctx, self.kind)
        state = call_registry("traffic_split", lambda: ctx.open_registry().state(model))
        lkg = snapshot.get("last_known_good")
        if state.active_version != snapshot.get("active_version"):
            return None
        if lkg is not None and _same(state.traffic, lkg, params["weight"]):
            return ActionResult(
                "succeeded",
                f"{model}: the split to {lkg} had been applied before the restart",
                {
                    "active_version": state.active_version,
                    "to_version": lkg,
                    "weight": params["weight"],
                    "previous_traffic": snapshot.get("traffic", {}),
                    "traffic": dict(state.traffic),
                },
            )
        if dict(state.traffic) == dict(snapshot.get("traffic", {})):
            return self.run(params, ctx, snapshot)
        return None

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        model = require_model(ctx, self.kind)
        registry = ctx.open_registry()
        state = call_registry("traffic_split", lambda: registry.state(model))
        active = prior.get("active_version")
        if not active or state.active_version != active:
            return ActionResult.refused(
                f"traffic_split recovery refused: {model}'s active version is {state.active_version}, not "
                f"{active} as when the split was made; leaving traffic as it is",
                traffic=dict(state.traffic),
            )
        if _same(state.traffic, active, 100):
            return ActionResult(
                "succeeded",
                f"{model}: {active} already receives 100% of traffic",
                {"active_version": active, "traffic": dict(state.traffic)},
            )
        new = call_registry(
            "traffic_split",
            lambda: registry.split(
                model, {active: 100}, actor=ctx.settings.actor, reason=audit_reason(ctx, params)
            ),
        )
        return ActionResult(
            "succeeded",
            f"{model}: traffic back to {active} (100%; {describe_state(registry, new)})",
            {"active_version": active, "traffic": dict(new.traffic)},
        )
