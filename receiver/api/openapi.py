"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of every route of the receiver.

The schemas are the ones the handlers enforce and answer with (:mod:`receiver.api.schemas`; the webhook
payload's from :mod:`receiver.payload_schema`, checked against the parser by the tests), and the query
parameters' limits are the handlers' own constants. ``tests/unit/test_openapi.py`` fails when a Flask route
has no operation here, and schemathesis checks the live receiver against this document in CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from flask import Blueprint, jsonify

from receiver.api import incidents
from receiver.api.openapi_people import people_operations
from receiver.api.schemas import COMPONENTS, ref
from receiver.payload_schema import NOTIFICATION_SCHEMA

__all__ = ["OPERATIONS", "Operation", "bp", "build_spec"]

bp = Blueprint("openapi", __name__)

_JSON = "application/json"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI template, e.g. /api/v1/incidents/{incident_id}
    endpoint: str  # the Flask endpoint that serves it
    summary: str
    responses: dict[str, Any]
    security: str | None = None  # "admin" | "webhook" | None (open: probes, runbook pages)
    params: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    body_required: bool = False
    body_type: str = _JSON


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _text(description: str, mimetype: str) -> dict[str, Any]:
    return {"description": description, "content": {mimetype: {"schema": {"type": "string"}}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, ref("Error"))


_INCIDENT_ID = {
    "name": "incident_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
_LIST_PARAMS = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": incidents.MAX_LIMIT},
    },
    {
        "name": "cursor",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": incidents.MAX_CURSOR},
        "description": "the id after which to continue (from `next`)",
    },
]
_ADMIN_ERRORS = {"401": _error("missing or wrong admin token"), "400": _error("bad query or body")}


def _decision(
    name: str, endpoint: str, summary: str, body: str = "AckBody", answer: str = "Decision"
) -> Operation:
    return Operation(
        "post",
        f"/api/v1/incidents/{{incident_id}}/{name}",
        endpoint,
        summary,
        {
            "200": _json("done (or already so: changed=false)", ref(answer)),
            **_ADMIN_ERRORS,
            "404": _error("no such incident"),
            "409": _error("not allowed in the incident's state"),
            "503": _error("responses are disabled on this receiver"),
        },
        "admin",
        [_INCIDENT_ID],
        ref(body),
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/api/v1/alerts",
        "webhook.receive_alerts",
        "Alertmanager v4 webhook: stored durably, then answered; processed asynchronously",
        {
            "200": _json("stored", ref("Accepted")),
            "400": _error("invalid payload: every problem named by its JSON path; the body is kept"),
            "401": _error("missing or wrong credentials"),
            "413": _error("body too large"),
            "415": _error("not JSON"),
            "503": _error("store unavailable: Alertmanager retries"),
        },
        "webhook",
        body=ref("Notification"),
        body_required=True,
    ),
    Operation(
        "get",
        "/api/v1/incidents",
        "incidents.list_incidents",
        "Incidents, newest first",
        {"200": _json("a page of incidents", ref("IncidentList")), **_ADMIN_ERRORS},
        "admin",
        [
            {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(incidents.STATES)}},
            {"name": "model", "in": "query", "schema": {"type": "string"}},
            {"name": "runbook", "in": "query", "schema": {"type": "string"}},
            *_LIST_PARAMS,
        ],
    ),
    Operation(
        "get",
        "/api/v1/incidents/{incident_id}",
        "incidents.get_incident",
        "One incident with its alerts and timeline",
        {
            "200": _json("the incident", ref("IncidentDetail")),
            **_ADMIN_ERRORS,
            "404": _error("no such incident"),
        },
        "admin",
        [_INCIDENT_ID],
    ),
    _decision("ack", "admin.acknowledge", "Acknowledge (stops the escalation timer)"),
    _decision("resolve", "admin.resolve", "Resolve by hand"),
    _decision("close", "admin.close", "Close a resolved incident"),
    _decision(
        "recover",
        "admin.recover",
        "Undo the containment (traffic back, fallback off...)",
        "RecoverBody",
        "Recovery",
    ),
    Operation(
        "get",
        "/api/v1/incidents/{incident_id}/review",
        "admin.review",
        "The post-incident review, built from the timeline",
        {"200": _text("Markdown", "text/markdown"), **_ADMIN_ERRORS, "404": _error("no such incident")},
        "admin",
        [_INCIDENT_ID],
    ),
    Operation(
        "get",
        "/api/v1/rejected",
        "incidents.list_rejected",
        "Rejected webhook bodies, newest first",
        {"200": _json("a page of rejected bodies", ref("RejectedList")), **_ADMIN_ERRORS},
        "admin",
        list(_LIST_PARAMS),
    ),
    Operation(
        "get",
        "/runbooks",
        "runbooks.list_runbooks",
        "The loaded runbooks (no token: alerts link here)",
        {"200": _json("runbooks", ref("RunbookList"))},
    ),
    Operation(
        "get",
        "/runbooks/{name}",
        "runbooks.show_runbook",
        "One runbook by id, or the runbook for an incident_type",
        {
            "200": {
                "description": "the runbook's YAML source, or its document when it has no file",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    _JSON: {"schema": ref("RunbookDocument")},
                },
            },
            "404": _error("no runbook with that id or incident_type"),
        },
        params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
    ),
    Operation("get", "/healthz", "health.healthz", "Liveness", {"200": _json("process up", ref("Health"))}),
    Operation(
        "get",
        "/readyz",
        "health.readyz",
        "Readiness: store writable, runbooks loaded, worker alive",
        {"200": _json("ready", ref("Ready")), "503": _error("not ready; problems says why")},
    ),
    Operation(
        "get",
        "/metrics",
        "health.metrics",
        "Prometheus metrics",
        {"200": _text("Prometheus text format", "text/plain")},
    ),
    Operation(
        "get",
        "/api/v1/openapi.json",
        "openapi.openapi",
        "This document",
        {"200": {"description": "OpenAPI 3.1", "content": {_JSON: {"schema": {"type": "object"}}}}},
    ),
)

OPERATIONS += people_operations(Operation)

_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "admin": [{"adminToken": []}],
    "webhook": [{"webhookToken": []}, {"webhookBasic": []}],
    "session": [{"consoleSession": []}],
    "slack": [{"slackSignature": []}],
    "pagerduty": [{"pagerdutySignature": []}],
}


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.endpoint.replace(".", "_"),
        "summary": op.summary,
        "responses": op.responses,
        "security": _SECURITY.get(op.security or "", []),
    }
    if op.params:
        out["parameters"] = op.params
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required, "content": {op.body_type: {"schema": op.body}}}
    return out


def _version() -> str:
    try:
        return metadata.version("ml-incident-runbooks")
    except metadata.PackageNotFoundError:
        return "0"


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict: callers may change it)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ML incident runbook receiver",
            "version": _version(),
            "description": "Between Alertmanager and model registries: webhook intake, incidents, "
            "human decisions, runbook pages, probes.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": {**COMPONENTS, "Notification": NOTIFICATION_SCHEMA},
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "the admin token"},
                "webhookToken": {"type": "http", "scheme": "bearer", "description": "the webhook token"},
                "webhookBasic": {"type": "http", "scheme": "basic", "description": "webhook basic auth"},
                "consoleSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "receiver_console",
                    "description": "the console's session cookie (forms also carry a CSRF token)",
                },
                "slackSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Slack-Signature",
                    "description": "Slack's v0 HMAC-SHA256 request signature with X-Slack-Request-Timestamp",
                },
                "pagerdutySignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-PagerDuty-Signature",
                    "description": "PagerDuty v3 webhook signature(s): v1=<HMAC-SHA256 hex>",
                },
            },
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi() -> Any:
    return jsonify(build_spec())
