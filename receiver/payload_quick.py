"""The request path's cheap check of a webhook body: accept the common valid shape without building objects.

Split from the full parser because it has a different contract: it only has to be sound (whatever it
accepts, :func:`receiver.payload.parse_notification` accepts too), never complete, and it is tuned for
speed on the hot path, while the full parser is tuned for naming every problem.
"""

from __future__ import annotations

import json
from typing import Any

from receiver.payload_json import MAX_JSON_DEPTH, json_depth, might_hold_surrogates
from receiver.payload_model import ALERT_KEYS, FINGERPRINT, NOTIFICATION_KEYS
from receiver.payload_times import utc_time_state

__all__ = ["quick_accept"]


def _string_map(value: Any) -> bool:
    """A dict of strings without an empty name (what the full parser's
    :meth:`receiver.payload._Reader.string_map` accepts silently)."""
    if type(value) is not dict or "" in value:
        return False
    for item in value.values():  # noqa: SIM110 - a plain loop: no generator per map on the hot path
        if type(item) is not str:
            return False
    return True


def _extras_shallow(obj: dict[str, Any], known: frozenset[str], level: int, max_depth: int) -> bool:
    """Values under unknown keys (kept, never read) do not nest deeper than ``max_depth`` overall."""
    if len(obj) <= len(known) and known.issuperset(obj):
        return True
    return all(level + json_depth(obj[key]) <= max_depth for key in obj if key not in known)


def _alert_ok(item: Any, max_depth: int) -> bool:
    if type(item) is not dict:
        return False
    status = item.get("status")
    if status != "firing" and status != "resolved":
        return False
    annotations = item.get("annotations", _EMPTY)
    if not (_string_map(item.get("labels")) and _string_map(annotations)):
        return False
    if utc_time_state(item.get("startsAt")) != 1:
        return False
    if "endsAt" in item:
        ends = utc_time_state(item["endsAt"])
        if ends < 0 or (ends == 0 and status == "resolved"):
            return False
    url = item.get("generatorURL", "")
    fingerprint = item.get("fingerprint")
    if type(url) is not str or type(fingerprint) is not str:
        return False
    if fingerprint and not FINGERPRINT.match(fingerprint):
        return False
    return _extras_shallow(item, ALERT_KEYS, 3, max_depth)


_EMPTY: dict[str, str] = {}


def quick_accept(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, int] | None:
    """The request path's check: ``(groupKey, number of alerts)`` when ``body`` is a valid notification
    in the shape Alertmanager sends, else ``None``.

    Sound but not complete: whenever it returns a result, :func:`parse_notification` of
    :func:`decode_json` of the body succeeds; a ``None`` only means "ask them" (they name every problem
    for the 400, or accept the rarer valid forms, such as times with offsets). It costs about a third of
    the full parse because it builds no objects and parses no times into datetimes.
    """
    if might_hold_surrogates(body):
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
    if not _extras_shallow(document, NOTIFICATION_KEYS, 1, max_depth):
        return None
    return group_key, len(alerts)
