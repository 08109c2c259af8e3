"""The shapes of request and response bodies, in one place: the handlers validate with them, and
:mod:`receiver.api.openapi` publishes them, so the API description cannot drift from what is enforced.

Response records are the store's dataclasses (``IncidentRecord``...) turned into JSON Schema from their type
hints by :func:`dataclass_schema`: the handlers answer ``dataclasses.asdict`` of those very classes. Request
bodies are validated with :func:`validate_body`, which names every problem by its JSON path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from jsonschema import Draft202012Validator

from receiver.errors import PayloadError
from receiver.store.base import AlertRecord, IncidentRecord, RejectedRecord, TimelineEntry

__all__ = [
    "ACK_BODY",
    "COMPONENTS",
    "RECOVER_BODY",
    "dataclass_schema",
    "ref",
    "validate_body",
]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _type_schema(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [_type_schema(a) for a in args if a is not type(None)]
        schema = members[0] if len(members) == 1 else {"anyOf": members}
        if type(None) in args:
            return (
                {"anyOf": [schema, {"type": "null"}]}
                if "type" not in schema
                else {**schema, "type": [schema["type"], "null"]}
            )
        return schema
    if hint is Any:
        return {}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1]) if args else {}}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")


def dataclass_schema(
    cls: type,
    *,
    override: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """JSON Schema of ``dataclasses.asdict(instance of cls)``; ``override`` replaces fields' schemas (e.g. a
    ``bytes`` field the handler shows as text), ``extra`` adds fields the handler adds."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if override and item.name in override:
            props[item.name] = override[item.name]
        else:
            props[item.name] = _type_schema(hints[item.name])
    props.update(extra or {})
    return {"type": "object", "properties": props, "required": sorted(props), "additionalProperties": False}


_NEXT = {"type": ["string", "null"], "description": "URL of the next (older) page, null on the last"}

#: ``POST /api/v1/incidents/<id>/ack|resolve|close``: who and why, both optional
ACK_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "actor": {"type": "string", "description": "who decided (default admin-api)"},
        "note": {"type": "string"},
    },
}
#: ``POST /api/v1/incidents/<id>/recover``
RECOVER_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        **ACK_BODY["properties"],
        "dry_run": {"type": "boolean", "description": "say what recovery would do, change nothing"},
    },
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer"},
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "problems": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "object"}]},
                    },
                },
                "required": ["code", "type", "message"],
            }
        },
        "required": ["error"],
    },
    "Accepted": {
        "type": "object",
        "properties": {
            "status": {"const": "accepted"},
            "id": {"type": "integer", "description": "the stored notification's id"},
            "alerts": {"type": "integer", "minimum": 0},
        },
        "required": ["status", "id", "alerts"],
        "additionalProperties": False,
    },
    "Incident": dataclass_schema(IncidentRecord),
    "Alert": dataclass_schema(AlertRecord),
    "TimelineEntry": dataclass_schema(TimelineEntry),
    "IncidentList": {
        "type": "object",
        "properties": {"incidents": {"type": "array", "items": ref("Incident")}, "next": _NEXT},
        "required": ["incidents", "next"],
        "additionalProperties": False,
    },
    "IncidentDetail": {
        "type": "object",
        "properties": {
            "incident": ref("Incident"),
            "alerts": {"type": "array", "items": ref("Alert")},
            "timeline": {"type": "array", "items": ref("TimelineEntry")},
        },
        "required": ["incident", "alerts", "timeline"],
        "additionalProperties": False,
    },
    "Rejected": dataclass_schema(
        RejectedRecord,
        override={
            "body": {"type": "string", "description": "the kept body as text (invalid UTF-8 replaced)"}
        },
        extra={"body_base64": {"type": "string", "description": "the kept bytes exactly"}},
    ),
    "RejectedList": {
        "type": "object",
        "properties": {"rejected": {"type": "array", "items": ref("Rejected")}, "next": _NEXT},
        "required": ["rejected", "next"],
        "additionalProperties": False,
    },
    "AckBody": ACK_BODY,
    "RecoverBody": RECOVER_BODY,
    "Decision": {
        "type": "object",
        "properties": {
            "incident": {"type": "integer"},
            "acknowledged": {"type": "boolean"},
            "state": {"type": "string"},
            "changed": {"type": "boolean", "description": "false when it was already so"},
        },
        "required": ["incident", "changed"],
        "additionalProperties": False,
    },
    "Recovery": {
        "type": "object",
        "properties": {
            "incident": {"type": "integer"},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "string"},
                        "action": {"type": "string"},
                        "state": {"type": "string"},
                        "summary": {"type": ["string", "null"]},
                        "error": {"type": ["string", "null"]},
                    },
                    "required": ["step", "action", "state", "summary", "error"],
                },
            },
        },
        "required": ["incident", "steps"],
        "additionalProperties": False,
    },
    "RunbookList": {
        "type": "object",
        "properties": {
            "runbooks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "match": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "matchers in their canonical form",
                        },
                        "priority": {"type": "integer"},
                    },
                    "required": ["id", "title", "match", "priority"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["runbooks"],
        "additionalProperties": False,
    },
    "RunbookDocument": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "document": {"type": "object"}},
        "required": ["id", "title", "document"],
    },
    "Health": {
        "type": "object",
        "properties": {"status": {"const": "ok"}},
        "required": ["status"],
        "additionalProperties": False,
    },
    "Ready": {
        "type": "object",
        "properties": {"status": {"const": "ready"}, "runbooks": {"type": "integer", "minimum": 1}},
        "required": ["status", "runbooks"],
        "additionalProperties": False,
    },
}


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate_body(schema: dict[str, Any], body: Any) -> None:
    """Raise :class:`PayloadError` naming every place where ``body`` does not fit ``schema``."""
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(map(str, e.path)))
    if errors:
        problems = [f"{_path(e.absolute_path)}: {e.message}" for e in errors]
        raise PayloadError(f"invalid request body: {len(problems)} problem(s)", problems)
