"""Hypothesis strategies shared by the property tests: valid v4 notifications and one-field breakages."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

__all__ = ["broken_notifications", "notifications", "shape_breakages"]

text = st.text(max_size=20)
label_names = st.text(min_size=1, max_size=12)
string_maps = st.dictionaries(label_names, text, max_size=4)
times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)).flatmap(
    lambda moment: st.sampled_from(
        [
            moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2))).isoformat(),
        ]
    )
)
extras = st.dictionaries(st.sampled_from(["extra", "x-note", "__future"]), st.integers() | text, max_size=2)


@st.composite
def alerts(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(["firing", "resolved"]))
    alert: dict[str, Any] = {
        "status": status,
        "labels": draw(string_maps),
        "startsAt": draw(times),
        "fingerprint": draw(st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=16)),
        **draw(extras),
    }
    if draw(st.booleans()):
        alert["annotations"] = draw(string_maps)
    if status == "resolved" or draw(st.booleans()):
        alert["endsAt"] = (
            draw(times) if status == "resolved" else draw(times | st.just("0001-01-01T00:00:00Z"))
        )
    if draw(st.booleans()):
        alert["generatorURL"] = draw(text)
    return alert


@st.composite
def notifications(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": "4",
        "groupKey": draw(text),
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "receiver": draw(text),
        "groupLabels": draw(string_maps),
        "commonLabels": draw(string_maps),
        "commonAnnotations": draw(string_maps),
        "alerts": draw(st.lists(alerts(), max_size=4)),
        **draw(extras),
    }
    if draw(st.booleans()):
        doc["truncatedAlerts"] = draw(st.integers(0, 10**6))
    if draw(st.booleans()):
        doc["externalURL"] = draw(text)
    return doc


_WRONG: st.SearchStrategy[Any] = st.sampled_from([None, 1, 2.5, True, [], {}, "text"])
_TOP_REQUIRED = [
    "version",
    "groupKey",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "alerts",
]
_TOP_TYPES = {
    "groupKey": str,
    "receiver": str,
    "externalURL": str,
    "groupLabels": dict,
    "commonLabels": dict,
    "commonAnnotations": dict,
    "alerts": list,
}
_ALERT_REQUIRED = ["status", "labels", "startsAt", "fingerprint"]
_ALERT_TYPES = {"labels": dict, "annotations": dict, "generatorURL": str, "fingerprint": str}


def _not_of(kind: type) -> Any:
    return lambda value: type(value) is not kind


@st.composite
def shape_breakages(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid notification broken in one place that JSON Schema can see too: (document, the path)."""
    doc = copy.deepcopy(draw(notifications()))
    where = draw(
        st.sampled_from(
            [
                "top-missing",
                "top-type",
                "status",
                "alert-missing",
                "alert-type",
                "label-value",
                "not-an-object",
                "truncated",
            ]
        )
    )
    if where.startswith("alert") or where == "label-value":
        if not doc["alerts"]:
            doc["alerts"].append(draw(alerts()))
        index = draw(st.integers(0, len(doc["alerts"]) - 1))
        alert = doc["alerts"][index]
        if where == "alert-missing":
            key = draw(st.sampled_from(_ALERT_REQUIRED))
            del alert[key]
            return doc, f"alerts[{index}].{key}"
        if where == "alert-type":
            key = draw(st.sampled_from(sorted(_ALERT_TYPES)))
            alert[key] = draw(_WRONG.filter(_not_of(_ALERT_TYPES[key])))
            return doc, f"alerts[{index}].{key}"
        alert["labels"]["model"] = draw(_WRONG.filter(lambda v: not isinstance(v, str)))
        return doc, f"alerts[{index}].labels.model"
    if where == "top-missing":
        key = draw(st.sampled_from(_TOP_REQUIRED))
        del doc[key]
        return doc, key
    if where == "top-type":
        key = draw(st.sampled_from(sorted(_TOP_TYPES)))
        doc[key] = draw(_WRONG.filter(_not_of(_TOP_TYPES[key])))
        return doc, key
    if where == "status":
        doc["status"] = draw(st.text(min_size=1).filter(lambda s: s not in ("firing", "resolved")))
        return doc, "status"
    if where == "truncated":
        doc["truncatedAlerts"] = draw(st.integers(max_value=-1) | st.sampled_from(["3", None, 1.5]))
        return doc, "truncatedAlerts"
    return draw(st.sampled_from([[], "x", 3, None])), "$"


@st.composite
def broken_notifications(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """Shape breakages plus what only the parser sees (times that are not RFC 3339 or not on a calendar)."""
    if draw(st.booleans()):
        return draw(shape_breakages())
    doc = copy.deepcopy(draw(notifications()))
    if not doc["alerts"]:
        doc["alerts"].append(draw(alerts()))
    doc["alerts"][0]["startsAt"] = draw(
        st.sampled_from(
            [
                "yesterday",
                "2026-02-30T00:00:00Z",
                "2026-13-01T00:00:00Z",
                "2026-01-01T25:00:00Z",
                "",
                "0001-01-01T00:00:00Z",
                "2026-01-01",
            ]
        )
    )
    return doc, "alerts[0].startsAt"
