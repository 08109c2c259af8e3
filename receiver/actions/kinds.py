"""JSON Schemas for the parameters of each containment / comms action kind.

A runbook step is ``{action: <kind>, when?: <expression>, id?: <step id>, dry_run?, timeout?, retries?,
...params}``. The runbook linter validates ``params`` (the step without those reserved keys, see
:data:`STEP_RESERVED_KEYS`; the executor reads them) against
``ACTION_PARAM_SCHEMAS[kind]`` and rejects unknown kinds. Executors (one module per kind) may extend these
schemas; keep ``additionalProperties: false`` so a misspelt parameter is an error, not a silent no-op.
"""

from __future__ import annotations

from typing import Any

from receiver.durations import DURATION_PATTERN

__all__ = [
    "ACTION_KINDS",
    "ACTION_PARAM_SCHEMAS",
    "DURATION_PATTERN",
    "STEP_RESERVED_KEYS",
    "params_schema",
    "step_params",
]

#: Keys of a step that are not parameters of its action.
STEP_RESERVED_KEYS: frozenset[str] = frozenset(
    {"action", "when", "id", "dry_run", "timeout", "retries", "approve"}
)


def _duration(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "description": f"{description} (Prometheus-style duration such as 30s, 5m, 1h)",
    }


_LAST_KNOWN_GOOD = {
    "enum": ["last_known_good"],
    "default": "last_known_good",
    "description": "Target version: the newest version that served healthily and is not marked unhealthy.",
}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


ACTION_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "rollback": _object(
        {
            "to": _LAST_KNOWN_GOOD,
            "preconditions": _object(
                {
                    "max_active_age": _duration(
                        "Roll back only if the active version was promoted less than this long ago; "
                        "a rollback does not cure a problem that predates the release"
                    ),
                    "require_last_known_good": {
                        "type": "boolean",
                        "default": True,
                        "description": "Refuse (and escalate) when there is none.",
                    },
                },
                description="Conditions checked just before acting; if one fails the step is skipped "
                "and the reason recorded on the timeline.",
            ),
            "reason": {"type": "string", "description": "Free text for the registry audit history."},
        },
        description="Make the last known good version active again.",
    ),
    "traffic_split": _object(
        {
            "to": _LAST_KNOWN_GOOD,
            "weight": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "description": "Percentage of traffic routed to the target version.",
            },
            "reason": {"type": "string"},
        },
        required=["weight"],
        description="Route part of the traffic to another version and watch.",
    ),
    "fallback": _object(
        {
            "enabled": {
                "type": "boolean",
                "description": "true: serve rules / cached features / safe defaults; false: back to normal.",
            },
            "reason": {"type": "string"},
        },
        required=["enabled"],
        description="Switch the model's serving mode to fallback (or back).",
    ),
    "guardrail": _object(
        {
            "level": {
                "description": "Moderation level 0-3, 'raise' (one step stricter) or 'restore' "
                "(the level before this incident).",
                "oneOf": [{"type": "integer", "minimum": 0, "maximum": 3}, {"enum": ["raise", "restore"]}],
            },
            "block_risky_tools": {
                "type": "boolean",
                "default": False,
                "description": "Also set the registry's tools_blocked switch: the model's servers refuse "
                "risky tool calls (web_browse, code_exec, send_email, file_write). "
                "Recovery restores the setting before the incident.",
            },
            "reason": {"type": "string"},
        },
        required=["level"],
        description="Change the LLM guardrail (moderation) level, optionally blocking risky tools.",
    ),
    "silence": _object(
        {
            "duration": _duration("How long the Alertmanager silence lasts"),
            "matchers": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
                "description": "Alertmanager matchers (may use {{ labels.x }} templates).",
            },
            "comment": {"type": "string"},
        },
        required=["duration", "matchers"],
        description="Create an Alertmanager silence (for known, contained noise).",
    ),
    "http": _object(
        {
            "url": {"type": "string", "minLength": 1, "description": "Target URL (template)."},
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "POST"},
            "body": {"type": "object", "description": "JSON body; string values are templates."},
            "token_file": {
                "type": "string",
                "minLength": 1,
                "description": "File holding a bearer token (never inline secrets).",
            },
        },
        required=["url"],
        description="Call an HTTP endpoint (webhook into another system).",
    ),
    "page": _object(
        {
            "service": {"type": "string", "minLength": 1, "description": "Pager service name."},
            "routing_key_file": {
                "type": "string",
                "minLength": 1,
                "description": "File holding the pager routing key.",
            },
            "event": {"enum": ["trigger", "acknowledge", "resolve"], "default": "trigger"},
            "summary": {"type": "string", "description": "Template for the page summary."},
            "severity": {
                "enum": ["critical", "error", "warning", "info"],
                "description": "Default from the level: SEV1 critical, SEV2 error, SEV3 warning.",
            },
            "custom_details": {"type": "object", "description": "Extra details; strings are templates."},
        },
        anyOf=[{"required": ["service"]}, {"required": ["routing_key_file"]}],
        description="Page a human through the pager.",
    ),
    "notify": _object(
        {
            "channel": {"type": "string", "minLength": 1, "description": "Comms channel name."},
            "audience": {"enum": ["oncall", "stakeholder"], "default": "oncall"},
            "event": {
                "enum": ["opened", "update", "contained", "escalated", "resolved"],
                "default": "update",
            },
            "template": {
                "type": "string",
                "description": "Inline Jinja message; default: the runbook's comms template.",
            },
        },
        required=["channel"],
        description="Post a message to a chat channel (no automatic change to serving).",
    ),
}

#: Known action kinds, in a stable order.
ACTION_KINDS: tuple[str, ...] = tuple(sorted(ACTION_PARAM_SCHEMAS))


def step_params(step: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a runbook step: everything except :data:`STEP_RESERVED_KEYS`."""
    return {k: v for k, v in step.items() if k not in STEP_RESERVED_KEYS}


def params_schema(kind: str, phase: str = "contain") -> dict[str, Any]:
    """The params schema of ``kind`` for a runbook phase.

    In ``recover`` a step undoes the containment recorded for its kind (``{action: traffic_split}`` sends the
    traffic back), so parameters are optional there: the ``required``/``anyOf`` constraints are dropped, the
    types and ranges of any given parameter still apply. Raises KeyError for an unknown kind.
    """
    schema = ACTION_PARAM_SCHEMAS[kind]
    if phase != "recover":
        return schema
    return {key: value for key, value in schema.items() if key not in ("required", "anyOf", "oneOf")}
