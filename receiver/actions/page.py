"""``page``: PagerDuty Events v2 trigger, acknowledge and resolve events to ``settings.pager_url``.

The responder acknowledges and resolves the page when the incident is acknowledged or resolved here. Every
event carries ``links`` to the incident's console page, ``client``/``client_url`` (the console) and a
``payload.timestamp`` when ``settings.public_url`` is known.

``dedup_key`` is the incident key, so a repeat or a retry updates the same page instead of opening another.
The routing key is read from a file (``routing_key_file`` or ``settings.pager_routing_key_file``) at call time
and appears in no result, ledger row or log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from receiver.actions.base import ActionContext, ActionResult, ActionSettings, BaseAction
from receiver.actions.transport import send
from receiver.comms.limits import PAGERDUTY_EVENT_BYTES, PAGERDUTY_SUMMARY_CHARS, cut, cut_values, fit
from receiver.errors import ActionParamError

__all__ = ["PAGE_CLIENT", "SEVERITY_BY_LEVEL", "PageAction"]

PAGE_CLIENT = "ML incident receiver"

SEVERITY_BY_LEVEL = {"SEV1": "critical", "SEV2": "error", "SEV3": "warning"}
_SEVERITIES = ("critical", "error", "warning", "info")


class PageAction(BaseAction):
    kind = "page"
    containment = False
    idempotent = False
    recoverable = True

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {
            "service",
            "routing_key_file",
            "event",
            "summary",
            "severity",
            "custom_details",
        }
        if unknown:
            raise ActionParamError(f"page: unknown parameter(s) {', '.join(sorted(unknown))}")
        event = params.get("event", "trigger")
        if event not in ("trigger", "acknowledge", "resolve"):
            raise ActionParamError(f"page: 'event' must be trigger, acknowledge or resolve, got {event!r}")
        severity = params.get("severity")
        if severity is not None and severity not in _SEVERITIES:
            raise ActionParamError(
                f"page: 'severity' must be one of {', '.join(_SEVERITIES)}, got {severity!r}"
            )
        details = params.get("custom_details") or {}
        if not isinstance(details, Mapping):
            raise ActionParamError("page: 'custom_details' must be a mapping")
        for name in ("service", "routing_key_file", "summary"):
            if params.get(name) is not None and not isinstance(params[name], str):
                raise ActionParamError(f"page: {name!r} must be a string")
        return {
            "service": params.get("service"),
            "routing_key_file": params.get("routing_key_file"),
            "event": event,
            "summary": params.get("summary"),
            "severity": severity,
            "custom_details": dict(details),
        }

    def _send(self, params: Mapping[str, Any], ctx: ActionContext, event: str) -> ActionResult:
        if not ctx.settings.pager_url:
            raise ActionParamError("page: settings.pager_url is not set")
        settings = ctx.settings
        if params.get("routing_key_file"):
            settings = ActionSettings(pager_routing_key_file=params["routing_key_file"])
        dedup_key = ctx.incident_key or ctx.incident_id
        body: dict[str, Any] = {
            "routing_key": settings.routing_key(),
            "event_action": event,
            "dedup_key": dedup_key,
        }
        severity = params.get("severity") or SEVERITY_BY_LEVEL.get(ctx.severity, "info")
        stamp = (ctx.now or datetime.now(UTC)).isoformat()
        public = ctx.settings.public_url
        if public:
            console = f"{str(public).rstrip('/')}/incidents/{ctx.incident_id}"
            body["client"], body["client_url"] = PAGE_CLIENT, console
            body["links"] = [{"href": console, "text": f"Incident {ctx.incident_id} in the console"}]
        if event != "trigger":
            body["payload"] = {
                "summary": f"incident {ctx.incident_id} {event}d in the receiver"[:1024],
                "source": params.get("service") or ctx.model or "ml-incident-receiver",
                "severity": severity,
                "timestamp": stamp,
            }
        if event == "trigger":
            summary = (
                params.get("summary")
                or f"[{ctx.severity or 'incident'}] {ctx.model}: incident {ctx.incident_id}"
            )
            body["payload"] = {
                "summary": cut(summary, PAGERDUTY_SUMMARY_CHARS, None),
                "source": params.get("service") or ctx.model or "ml-incident-receiver",
                "severity": severity,
                "timestamp": stamp,
                "component": ctx.model,
                "group": ctx.runbook_id,
                "custom_details": {
                    "incident_id": ctx.incident_id,
                    "level": ctx.severity,
                    "labels": dict(ctx.labels),
                    **params.get("custom_details", {}),
                },
            }
            # PagerDuty refuses events over 512 KB: long details (a templated annotation) are cut, noted
            whole, pd_event = dict(body), dict(body["payload"])

            def _within(chars: int) -> dict[str, Any]:
                details = cut_values(pd_event["custom_details"], chars, None)
                return {**whole, "payload": {**pd_event, "custom_details": details}}

            body = fit(_within, PAGERDUTY_EVENT_BYTES, 64 * 1024)
        response = send(
            ctx.http(), "POST", ctx.settings.pager_url, what="page", timeout=ctx.timeout, json_body=body
        )
        return ActionResult(
            "succeeded",
            f"page {event} sent (dedup_key {dedup_key})",
            {
                "event_action": event,
                "dedup_key": dedup_key,
                "severity": severity,
                "status": response.status_code,
            },
        )

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        return self._send(params, ctx, params["event"])

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        if prior.get("event_action") != "trigger":
            return ActionResult.skipped("page: nothing was triggered; nothing to resolve")
        return self._send(
            params, ctx.narrow(incident_key=str(prior.get("dedup_key") or ctx.incident_key)), "resolve"
        )
