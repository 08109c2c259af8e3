"""JSON Schema (2020-12) of Alertmanager's v4 webhook payload, as :func:`receiver.payload.parse_notification`
accepts it: published in the OpenAPI document; the parser stays the validator (it names every problem by
path and checks what a schema cannot: calendar dates, Go's zero time, a resolved alert's end).

``tests/property/test_payload_schema.py`` checks that the two agree: whatever the parser accepts fits this
schema, and the shape errors it generates are refused by both.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ALERT_SCHEMA", "NOTIFICATION_SCHEMA"]

_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 (a space for the T is accepted too); 0001-01-01T00:00:00Z (Go's zero time) "
    "means unset, and startsAt must be set",
}
_STRING_MAP = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "propertyNames": {"minLength": 1},
}
_STATUS = {"enum": ["firing", "resolved", ""]}
#: an alert's own status is never empty: the store keeps only these two (an empty one would be refused there)
_ALERT_STATUS = {"enum": ["firing", "resolved"]}

ALERT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": _STATUS,
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "startsAt": _TIME,
        "endsAt": _TIME,
        "generatorURL": {"type": "string"},
        "fingerprint": {"type": "string", "pattern": "^([0-9a-fA-F]{1,64})?$"},
    },
    "required": ["status", "labels", "startsAt", "fingerprint"],
}

NOTIFICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Alertmanager webhook payload, version 4; unknown keys are kept and ignored",
    "properties": {
        "version": {"enum": ["4", ""]},
        "groupKey": {"type": "string"},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "status": _STATUS,
        "receiver": {"type": "string"},
        "groupLabels": _STRING_MAP,
        "commonLabels": _STRING_MAP,
        "commonAnnotations": _STRING_MAP,
        "externalURL": {"type": "string"},
        "alerts": {"type": "array", "items": ALERT_SCHEMA},
    },
    "required": [
        "version",
        "groupKey",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "alerts",
    ],
}
