"""``notify``: enqueue a status update for a channel through the comms outbox (the injected notifier).

The dedupe key is ``<incident>:<phase>:<step>``, so the outbox drops a second enqueue of the same update;
that makes notify safe to run again after a crash (it is treated as idempotent). An inline ``template`` is
rendered here in the sandbox; if it fails the message still goes out, as plain text naming the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.actions.base import ActionContext, ActionResult, BaseAction
from receiver.errors import ActionParamError, ActionTransient, TemplateError
from receiver.templating import render

__all__ = ["NotifyAction"]

_EVENTS = ("opened", "update", "contained", "escalated", "resolved")


class NotifyAction(BaseAction):
    kind = "notify"
    containment = False
    idempotent = True

    def render(self, params: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        out = super().render({k: v for k, v in params.items() if k != "template"}, context)
        if "template" in params:
            template = params["template"]
            if not isinstance(template, str):
                raise ActionParamError("notify: 'template' must be a string")
            try:
                out["text"] = render(template, context)
            except TemplateError as exc:
                out["text"] = (
                    f"[template error: {exc.message}] incident {context['incident']['id']} "
                    f"model {context['model']} level {context['level']}"
                )
                out["template_error"] = exc.message
        return out

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"channel", "audience", "event", "text", "template_error"}
        if unknown:
            raise ActionParamError(f"notify: unknown parameter(s) {', '.join(sorted(unknown))}")
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            raise ActionParamError(f"notify: 'channel' must be a non-empty string, got {channel!r}")
        audience = params.get("audience", "oncall")
        if audience not in ("oncall", "stakeholder"):
            raise ActionParamError(f"notify: 'audience' must be oncall or stakeholder, got {audience!r}")
        event = params.get("event", "update")
        if event not in _EVENTS:
            raise ActionParamError(f"notify: 'event' must be one of {', '.join(_EVENTS)}, got {event!r}")
        return {k: v for k, v in {**params, "audience": audience, "event": event}.items() if v is not None}

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        if ctx.notifier is None:
            raise ActionParamError("notify: no notifier (comms outbox) was given to the action context")
        dedupe_key = f"{ctx.incident_id}:{ctx.phase}:{ctx.step_id}"
        payload = {
            "event": params["event"],
            "audience": params["audience"],
            "incident_id": ctx.incident_id,
            "model": ctx.model,
            "severity": ctx.severity,
            "step_id": ctx.step_id,
        }
        if "text" in params:
            payload["text"] = params["text"]
        try:
            ctx.notifier(ctx.incident_id, params["channel"], payload, dedupe_key)
        except Exception as exc:
            raise ActionTransient(
                f"notify: enqueue to {params['channel']} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return ActionResult(
            "succeeded",
            f"status update queued for {params['channel']}",
            {"channel": params["channel"], "dedupe_key": dedupe_key, "event": params["event"]},
        )

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        return self.run(params, ctx, snapshot)
