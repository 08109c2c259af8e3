"""Typed parsing of Alertmanager's v4 webhook payload (pure: bytes in, frozen dataclasses out).

:func:`parse_notification` never stops at the first problem: it walks the whole document and raises one
:class:`~receiver.errors.PayloadError` whose ``problems`` name every bad field by its JSON path, e.g.
``alerts[2].startsAt: expected RFC 3339 time, got "yesterday"``. Label and annotation values are kept
verbatim; nothing here interprets them.

This module is the full parse; its pieces live next to it, one job each: :mod:`receiver.payload_json`
(safe decoding of a body), :mod:`receiver.payload_times` (RFC 3339 times), :mod:`receiver.payload_model`
(the dataclasses and field vocabulary) and :mod:`receiver.payload_quick` (the request path's cheap check).
Every public name stays importable from here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from receiver.errors import PayloadError
from receiver.payload_json import MAX_JSON_DEPTH, decode_json, safe_text
from receiver.payload_model import FINGERPRINT, STATUSES, Alert, Notification
from receiver.payload_quick import quick_accept
from receiver.payload_times import format_time, is_zero_time, parse_rfc3339

__all__ = [
    "MAX_JSON_DEPTH",
    "Alert",
    "Notification",
    "decode_json",
    "format_time",
    "parse_notification",
    "parse_rfc3339",
    "quick_accept",
    "safe_text",
]


def _show(value: Any) -> str:
    text = (
        json.dumps(value, ensure_ascii=False) if not isinstance(value, (dict, list)) else type(value).__name__
    )
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Reader:
    """Collects problems while reading fields of one document."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def field(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> Any:
        if key not in obj:
            if required:
                self.fail(f"{path}{key}", "required field is missing")
            return None
        return obj[key]

    def string(
        self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = True, default: str = ""
    ) -> str:
        value = self.field(obj, key, path, required=required)
        if value is None and key not in obj:
            return default
        if not isinstance(value, str):
            self.fail(f"{path}{key}", f"expected string, got {_type_name(value)} {_show(value)}")
            return default
        return value

    def status(self, obj: Mapping[str, Any], key: str, path: str, *, allow_empty: bool = False) -> str:
        value = self.string(obj, key, path)
        if key in obj and isinstance(obj[key], str) and value not in STATUSES and (value or not allow_empty):
            self.fail(f"{path}{key}", f'expected "firing" or "resolved", got {_show(value)}')
        return value

    def string_map(
        self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> dict[str, str]:
        value = self.field(obj, key, path, required=required)
        if value is None and key not in obj:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{path}{key}", f"expected object of strings, got {_type_name(value)} {_show(value)}")
            return {}
        result: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(item, str):
                self.fail(f"{path}{key}.{name}", f"expected string, got {_type_name(item)} {_show(item)}")
            elif not name:
                self.fail(f"{path}{key}", "empty label name")
            else:
                result[name] = item
        return result

    def time(self, obj: Mapping[str, Any], key: str, path: str) -> datetime | None:
        value = self.field(obj, key, path)
        if value is None and key not in obj:
            return None
        if not isinstance(value, str):
            self.fail(f"{path}{key}", f"expected RFC 3339 time, got {_type_name(value)} {_show(value)}")
            return None
        try:
            return parse_rfc3339(value)
        except ValueError:
            self.fail(f"{path}{key}", f"expected RFC 3339 time, got {_show(value)}")
            return None


def _parse_alert(reader: _Reader, item: Any, index: int) -> Alert | None:
    path = f"alerts[{index}]."
    if not isinstance(item, dict):
        reader.fail(f"alerts[{index}]", f"expected object, got {_type_name(item)}")
        return None
    status = reader.status(item, "status", path)
    labels = reader.string_map(item, "labels", path)
    annotations = reader.string_map(item, "annotations", path, required=False)
    starts_at = reader.time(item, "startsAt", path)
    ends_at = reader.time(item, "endsAt", path) if "endsAt" in item else None
    generator_url = reader.string(item, "generatorURL", path, required=False)
    fingerprint = reader.string(item, "fingerprint", path)
    if fingerprint and not FINGERPRINT.match(fingerprint):
        reader.fail(f"{path}fingerprint", f"expected hexadecimal fingerprint, got {_show(fingerprint)}")
    if starts_at is None and is_zero_time(item.get("startsAt")):
        reader.fail(f"{path}startsAt", "must be set (got the zero time)")
    if status == "resolved" and ends_at is None and is_zero_time(item.get("endsAt")):
        reader.fail(f"{path}endsAt", "a resolved alert needs an end time (got the zero time)")
    return Alert(
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
        fingerprint=fingerprint.lower(),
    )


def parse_notification(document: Any) -> Notification:
    """Validate a decoded v4 document (or raw ``bytes``) and return a :class:`Notification`.

    Raises :class:`PayloadError` listing every problem found, each prefixed with its JSON path.
    """
    if isinstance(document, (bytes, bytearray)):
        document = decode_json(bytes(document))
    if not isinstance(document, dict):
        raise PayloadError(
            "invalid Alertmanager notification", [f"$: expected a JSON object, got {_type_name(document)}"]
        )
    reader = _Reader()
    version = reader.string(document, "version", "")
    if version and version != "4":
        reader.fail("version", f'expected "4", got {_show(version)}')
    group_key = reader.string(document, "groupKey", "")
    truncated = document.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        reader.fail("truncatedAlerts", f"expected integer >= 0, got {_show(truncated)}")
        truncated = 0
    status = reader.status(document, "status", "", allow_empty=True)
    receiver = reader.string(document, "receiver", "")
    group_labels = reader.string_map(document, "groupLabels", "")
    common_labels = reader.string_map(document, "commonLabels", "")
    common_annotations = reader.string_map(document, "commonAnnotations", "")
    external_url = reader.string(document, "externalURL", "", required=False)
    raw_alerts = reader.field(document, "alerts", "")
    alerts: list[Alert] = []
    if raw_alerts is not None or "alerts" in document:
        if not isinstance(raw_alerts, list):
            reader.fail("alerts", f"expected array, got {_type_name(raw_alerts)}")
        else:
            for index, item in enumerate(raw_alerts):
                alert = _parse_alert(reader, item, index)
                if alert is not None:
                    alerts.append(alert)
    if reader.problems:
        count = len(reader.problems)
        raise PayloadError(
            f"invalid Alertmanager notification: {count} problem{'s' if count > 1 else ''}", reader.problems
        )
    return Notification(
        version=version,
        group_key=group_key,
        truncated_alerts=truncated,
        status=status,
        receiver=receiver,
        group_labels=group_labels,
        common_labels=common_labels,
        common_annotations=common_annotations,
        external_url=external_url,
        alerts=tuple(alerts),
    )
