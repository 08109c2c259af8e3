"""The OpenAPI operations of the people-in-the-loop routes: approvals (admin API), the console (session
cookie + CSRF), and the signed Slack and PagerDuty callbacks. Kept beside :mod:`receiver.api.openapi`
(which assembles the document) so each file stays one screenful of one kind of route."""

from __future__ import annotations

from typing import Any

__all__ = ["people_operations"]

_JSON = "application/json"
_HTML = "text/html"
_FORM = "application/x-www-form-urlencoded"


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema or {"type": "object"}}}}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_HTML: {"schema": {"type": "string"}}}}


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_ID = {"type": "integer", "minimum": 0}
_INCIDENT = _path("incident_id", _ID)
_ERR = _json("an error in the receiver's error shape", {"$ref": "#/components/schemas/Error"})
_SIGNED_IN = {
    "303": {"description": "not signed in: redirected to /login"},
    "403": _html("a wrong or missing CSRF token, or a role that may not do this"),
}
_DECISION_BODY = {
    "type": "object",
    "properties": {
        "decision": {"enum": ["approve", "deny"]},
        "actor": {"type": "string", "maxLength": 200},
        "reason": {"type": "string", "maxLength": 1000},
    },
    "required": ["decision"],
}
_FORM_BODY = {
    "type": "object",
    "properties": {"csrf_token": {"type": "string"}},
    "additionalProperties": True,
}


def people_operations(operation: Any) -> tuple[Any, ...]:
    """``operation`` is :class:`receiver.api.openapi.Operation` (passed in: no import cycle)."""
    decided = {
        "200": _json("the decision won and was applied"),
        "400": _ERR,
        "401": _ERR,
        "404": _ERR,
        "409": _json("already decided (by whom is in the message)", {"$ref": "#/components/schemas/Error"}),
        "503": _ERR,
    }
    return (
        operation(
            "get",
            "/api/v1/incidents/{incident_id}/approvals",
            "approvals.list_approvals",
            "The incident's approval gates (pending and decided)",
            {"200": _json("approvals"), "401": _ERR, "404": _ERR, "503": _ERR},
            security="admin",
            params=[_INCIDENT],
        ),
        operation(
            "post",
            "/api/v1/incidents/{incident_id}/approvals/{approval_id}",
            "approvals.decide_by_id",
            "Approve or deny a gated step; the first decision wins, once, across replicas",
            decided,
            security="admin",
            params=[_INCIDENT, _path("approval_id", _ID)],
            body=_DECISION_BODY,
            body_required=True,
        ),
        operation(
            "post",
            "/api/v1/incidents/{incident_id}/approvals/step/{step_id}",
            "approvals.decide_by_step",
            "Approve or deny a gated step named by its runbook step id",
            decided,
            security="admin",
            params=[_INCIDENT, _path("step_id", {"type": "string", "minLength": 1})],
            body=_DECISION_BODY,
            body_required=True,
        ),
        operation(
            "post",
            "/slack/interactions",
            "slack.interactions",
            "Slack button clicks (v0 request signature, 5-minute window, replays refused)",
            {
                "200": _json("recorded; acted on from the store"),
                "400": _ERR,
                "401": _ERR,
                "404": _json("no slack_app channel is configured", {"$ref": "#/components/schemas/Error"}),
            },
            security="slack",
            body={"type": "object", "properties": {"payload": {"type": "string"}}},
            body_type=_FORM,
        ),
        operation(
            "post",
            "/pagerduty/webhook",
            "pagerduty.webhook",
            "PagerDuty v3 webhooks: incident.acknowledged / incident.resolved (X-PagerDuty-Signature)",
            {
                "200": _json("recorded; acted on once"),
                "400": _ERR,
                "401": _ERR,
                "404": _json("PagerDuty webhooks are not enabled", {"$ref": "#/components/schemas/Error"}),
            },
            security="pagerduty",
            body={"type": "object"},
        ),
        operation(
            "get",
            "/console-static/{filename}",
            "console.static",
            "The console's stylesheet and script",
            {"200": {"description": "a static file"}, "404": {"description": "no such file"}},
            params=[_path("filename", {"type": "string"})],
        ),
        operation("get", "/login", "console.login_form", "Sign-in page", {"200": _html("the form")}),
        operation(
            "post",
            "/login",
            "console.login",
            "Sign in (admin token, a user from the users file); CSRF token required",
            {
                "303": {"description": "signed in"},
                "401": _html("wrong credentials"),
                "403": _html("bad CSRF"),
            },
            body=_FORM_BODY,
            body_type=_FORM,
        ),
        operation(
            "post",
            "/logout",
            "console.logout",
            "Sign out (the session ends on every replica)",
            {"303": {"description": "to /login"}, **_SIGNED_IN},
            security="session",
            body=_FORM_BODY,
            body_type=_FORM,
        ),
        operation(
            "get",
            "/",
            "console.incident_list",
            "Incident list with filters",
            {"200": _html("the list"), **_SIGNED_IN},
            security="session",
        ),
        operation(
            "get",
            "/incidents/{incident_id}",
            "console.incident_page",
            "One incident: timeline, evidence charts, actions, approvals, messages, registry now",
            {"200": _html("the incident"), "404": _html("no such incident"), **_SIGNED_IN},
            security="session",
            params=[_INCIDENT],
        ),
        operation(
            "post",
            "/incidents/{incident_id}/{action}",
            "console.act",
            "Acknowledge, recover, resolve or close (lands on the timeline with who did it)",
            {"303": {"description": "back to the incident"}, "404": _html("unknown action"), **_SIGNED_IN},
            security="session",
            params=[_INCIDENT, _path("action", {"enum": ["ack", "recover", "resolve", "close"]})],
            body=_FORM_BODY,
            body_type=_FORM,
        ),
        operation(
            "post",
            "/incidents/{incident_id}/approvals/{approval_id}/{decision}",
            "console.decide",
            "Approve or deny a pending gate from the console",
            {"303": {"description": "back to the incident"}, "404": _html("no such approval"), **_SIGNED_IN},
            security="session",
            params=[_INCIDENT, _path("approval_id", _ID), _path("decision", {"enum": ["approve", "deny"]})],
            body=_FORM_BODY,
            body_type=_FORM,
        ),
        operation(
            "get",
            "/incidents/{incident_id}/review",
            "console.review_page",
            "The post-incident review with charts and the facts the data answers",
            {"200": _html("the review"), "404": _html("no such incident"), **_SIGNED_IN},
            security="session",
            params=[_INCIDENT],
        ),
        operation(
            "get",
            "/incidents/{incident_id}/review.md",
            "console.review_markdown",
            "The review as Markdown with the charts embedded",
            {
                "200": {
                    "description": "Markdown",
                    "content": {"text/markdown": {"schema": {"type": "string"}}},
                },
                **_SIGNED_IN,
            },
            security="session",
            params=[_INCIDENT],
        ),
        operation(
            "get",
            "/console/runbooks",
            "console.runbook_list",
            "Runbooks with their lint result",
            {"200": _html("the runbooks"), **_SIGNED_IN},
            security="session",
        ),
        operation(
            "get",
            "/console/runbooks/{runbook_id}",
            "console.runbook_page",
            "One runbook: its YAML and lint result",
            {"200": _html("the runbook"), "404": _html("no such runbook"), **_SIGNED_IN},
            security="session",
            params=[_path("runbook_id", {"type": "string"})],
        ),
    )
