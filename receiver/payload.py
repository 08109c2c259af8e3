"""Typed parsing of Alertmanager's v4 webhook payload (pure: bytes in, frozen dataclasses out).

:func:`parse_notification` never stops at the first problem: it walks the whole document and raises one
:class:`~receiver.errors.PayloadError` whose ``problems`` name every bad field by its JSON path, e.g.
``alerts[2].startsAt: expected RFC 3339 time, got "yesterday"``. Label and annotation values are kept
verbatim; nothing here interprets them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from receiver.errors import PayloadError

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

#: Deepest nesting accepted in a body. A v4 payload needs 4 levels; anything far deeper is hostile.
MAX_JSON_DEPTH = 32

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
#: the common shape of Alertmanager's times (UTC, ``T``, ``Z``): a strict subset of ``_RFC3339``
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z", re.ASCII)
_NOTIFICATION_KEYS = frozenset(
    (
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    )
)
_ALERT_KEYS = frozenset(
    ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint")
)
_STATUSES = ("firing", "resolved")


@dataclass(frozen=True, slots=True)
class Alert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str
    fingerprint: str

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True, slots=True)
class Notification:
    version: str
    group_key: str
    truncated_alerts: int
    status: str
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]


def parse_rfc3339(text: str) -> datetime | None:
    """Parse an RFC 3339 time (nanoseconds truncated to microseconds) into an aware UTC datetime.

    Go's zero time ``0001-01-01T00:00:00Z`` means "unset" and returns ``None``. Raises ``ValueError``.
    """
    match = _RFC3339.match(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        tz = UTC
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(text)
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if int(year) <= 1 and month == "01" and day == "01":
        return None  # Go zero time (in any offset): unset
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    return moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str | None:
    """The canonical text of a time in the store: UTC, microseconds, ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _depth(value: Any) -> int:
    """Maximum nesting depth, iteratively (a recursive walk could itself overflow)."""
    if not isinstance(value, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # only containers are pushed: scalars (most of a payload) cost one isinstance each
        item, level = stack.pop()
        if level > deepest:
            deepest = level
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
    return deepest


# a JSON escape of a UTF-16 surrogate: the only way a lone surrogate gets into a decoded str (raw bytes
# of one are invalid UTF-8); valid pairs match too, and decode to one code point, so only lone ones remain
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """``text`` with any lone surrogate shown as ``\\udXXX``, so it can be encoded, stored and logged."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _might_hold_surrogates(body: bytes) -> bool:
    return (b"\\ud" in body or b"\\uD" in body) and _SURROGATE_ESCAPE.search(body) is not None


def _surrogate_problems(document: Any) -> list[str]:
    """Every string (key or value) holding a lone surrogate, by JSON path (iterative, depth-checked)."""
    problems: list[str] = []
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found is not None:
                problems.append(
                    f"{path or '$'}: lone surrogate {safe_text(found.group())} at character {found.start()} "
                    "(not valid Unicode; Alertmanager never sends one)"
                )
        elif isinstance(value, dict):
            for key, child in value.items():
                name = safe_text(key)
                if name != key:
                    problems.append(f"{path or '$'}: name {name!r} holds a lone surrogate (not Unicode)")
                stack.append((child, f"{path}.{name}" if path else name))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(value))
    return sorted(problems)


def decode_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a UTF-8 JSON body, refusing non-UTF-8, malformed/truncated, too deeply nested input,
    integers beyond Python's digit limit and strings with lone surrogates (they cannot be stored)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            "body is not valid UTF-8", [f"$: invalid UTF-8 at byte {exc.start}: {exc.reason}"]
        ) from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise PayloadError(
            "body is nested too deeply", [f"$: nesting deeper than {max_depth} levels"]
        ) from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            "body is not valid JSON",
            [f"$: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"],
        ) from None
    except ValueError:  # int() of a literal over sys.get_int_max_str_digits() (4300 by default)
        raise PayloadError(
            "body holds a number too long to read", ["$: an integer literal longer than 4300 digits"]
        ) from None
    if _depth(document) > max_depth:
        raise PayloadError("body is nested too deeply", [f"$: nesting deeper than {max_depth} levels"])
    if _might_hold_surrogates(body):
        problems = _surrogate_problems(document)
        if problems:
            raise PayloadError("body holds text that is not valid Unicode", problems)
    return document


def _string_map(value: Any) -> bool:
    """A dict of strings without an empty name (what :meth:`_Reader.string_map` accepts silently)."""
    if type(value) is not dict or "" in value:
        return False
    for item in value.values():  # noqa: SIM110 - a plain loop: no generator per map on the hot path
        if type(item) is not str:
            return False
    return True


def _utc_time(value: Any) -> int:
    """1: a valid UTC ``...Z`` time that is set; 0: Go's zero time (unset); -1: anything else (the slow
    path decides). A subset of what :func:`parse_rfc3339` accepts, with the same range checks."""
    if type(value) is not str or _UTC_TIME.fullmatch(value) is None:
        return -1
    if value[4:10] == "-01-01" and value[:4] in ("0000", "0001"):
        return 0
    if value[11:13] > "23" or value[17:19] > "59":  # explicit: never rely on a lenient fromisoformat
        return -1
    try:
        datetime.fromisoformat(value[:19])  # the calendar check (month length, leap years)
    except ValueError:
        return -1
    return 1


def _extras_shallow(obj: dict[str, Any], known: frozenset[str], level: int, max_depth: int) -> bool:
    """Values under unknown keys (kept, never read) do not nest deeper than ``max_depth`` overall."""
    if len(obj) <= len(known) and known.issuperset(obj):
        return True
    return all(level + _depth(obj[key]) <= max_depth for key in obj if key not in known)


def _alert_ok(item: Any, max_depth: int) -> bool:
    if type(item) is not dict:
        return False
    status = item.get("status")
    if status != "firing" and status != "resolved":
        return False
    annotations = item.get("annotations", _EMPTY)
    if not (_string_map(item.get("labels")) and _string_map(annotations)):
        return False
    if _utc_time(item.get("startsAt")) != 1:
        return False
    if "endsAt" in item:
        ends = _utc_time(item["endsAt"])
        if ends < 0 or (ends == 0 and status == "resolved"):
            return False
    url = item.get("generatorURL", "")
    fingerprint = item.get("fingerprint")
    if type(url) is not str or type(fingerprint) is not str:
        return False
    if fingerprint and not _FINGERPRINT.match(fingerprint):
        return False
    return _extras_shallow(item, _ALERT_KEYS, 3, max_depth)


_EMPTY: dict[str, str] = {}


def quick_accept(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, int] | None:
    """The request path's check: ``(groupKey, number of alerts)`` when ``body`` is a valid notification
    in the shape Alertmanager sends, else ``None``.

    Sound but not complete: whenever it returns a result, :func:`parse_notification` of
    :func:`decode_json` of the body succeeds; a ``None`` only means "ask them" (they name every problem
    for the 400, or accept the rarer valid forms, such as times with offsets). It costs about a third of
    the full parse because it builds no objects and parses no times into datetimes.
    """
    if _might_hold_surrogates(body):
        return None  # the full path names every lone surrogate for the 400
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if type(document) is not dict:
        return None
    get = document.get
    version, group_key, receiver = get("version"), get("groupKey"), get("receiver")
    if (version != "4" and version != "") or type(group_key) is not str or type(receiver) is not str:
        return None
    status = get("status")
    if status != "firing" and status != "resolved" and status != "":
        return None
    truncated = get("truncatedAlerts", 0)
    if type(truncated) is not int or truncated < 0:
        return None
    if type(get("externalURL", "")) is not str:
        return None
    if not (
        _string_map(get("groupLabels"))
        and _string_map(get("commonLabels"))
        and _string_map(get("commonAnnotations"))
    ):
        return None
    alerts = get("alerts")
    if type(alerts) is not list:
        return None
    for item in alerts:
        if not _alert_ok(item, max_depth):
            return None
    if not _extras_shallow(document, _NOTIFICATION_KEYS, 1, max_depth):
        return None
    return group_key, len(alerts)


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
        if key in obj and isinstance(obj[key], str) and value not in _STATUSES and (value or not allow_empty):
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


def _is_zero_time(value: Any) -> bool:
    return isinstance(value, str) and bool(_RFC3339.match(value)) and value[:10] == "0001-01-01"


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
    if fingerprint and not _FINGERPRINT.match(fingerprint):
        reader.fail(f"{path}fingerprint", f"expected hexadecimal fingerprint, got {_show(fingerprint)}")
    if starts_at is None and _is_zero_time(item.get("startsAt")):
        reader.fail(f"{path}startsAt", "must be set (got the zero time)")
    if status == "resolved" and ends_at is None and _is_zero_time(item.get("endsAt")):
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
