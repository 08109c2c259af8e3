"""Parsing and validation of Alertmanager v4 payloads: every problem named by its JSON path."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from receiver.errors import PayloadError
from receiver.payload import (
    MAX_JSON_DEPTH,
    decode_json,
    format_time,
    parse_notification,
    parse_rfc3339,
    quick_accept,
)
from tests.support.payloads import alert, notification


def problems_of(document: object) -> list[str]:
    with pytest.raises(PayloadError) as info:
        parse_notification(document if isinstance(document, bytes) else json.dumps(document).encode())
    return info.value.problems


def test_valid_payload_parses_to_typed_notification() -> None:
    doc = notification(
        alert(), alert("resolved", ends_at="2024-05-01T11:00:00+02:00", feature="age"), truncated=3
    )
    parsed = parse_notification(json.dumps(doc).encode())
    assert parsed.version == "4" and parsed.truncated_alerts == 3 and parsed.status == "firing"
    first, second = parsed.alerts
    assert first.starts_at == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert first.ends_at is None  # Go zero time means unset
    assert second.ends_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # offset normalised to UTC
    assert first.alertname == "FeatureDrift" and second.labels["feature"] == "age"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000000Z"),
        ("2024-05-01T10:00:00.5-01:30", "2024-05-01T11:30:00.500000Z"),
        ("2024-05-01t10:00:00.999999999z", "2024-05-01T10:00:00.999999Z"),
    ],
)
def test_rfc3339_variants(text: str, expected: str) -> None:
    assert format_time(parse_rfc3339(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2024-05-01", "2024-13-01T00:00:00Z", "2024-05-01T10:00:00", "2024-05-01T10:00:00+25:00"],
)
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_every_problem_is_listed_with_its_path() -> None:
    bad = alert(starts_at="yesterday")
    bad["labels"]["replicas"] = 3
    bad["fingerprint"] = "not-hex!"
    doc = notification(alert(), alert(), bad, truncated=-1, status="exploded")
    del doc["groupKey"]
    problems = problems_of(doc)
    assert 'alerts[2].startsAt: expected RFC 3339 time, got "yesterday"' in problems
    assert "alerts[2].labels.replicas: expected string, got number 3" in problems
    assert 'alerts[2].fingerprint: expected hexadecimal fingerprint, got "not-hex!"' in problems
    assert "truncatedAlerts: expected integer >= 0, got -1" in problems
    assert 'status: expected "firing" or "resolved", got "exploded"' in problems
    assert "groupKey: required field is missing" in problems
    assert len(problems) == 6


def test_wrong_types_and_missing_fields() -> None:
    doc = {
        "version": 4,
        "status": "firing",
        "alerts": {"0": {}},
        "groupLabels": [],
        "commonLabels": {},
        "commonAnnotations": {},
        "receiver": "r",
        "groupKey": "g",
    }
    problems = problems_of(doc)
    assert "version: expected string, got number 4" in problems
    assert "alerts: expected array, got object" in problems
    assert "groupLabels: expected object of strings, got array list" in problems


def test_missing_alert_fields_and_zero_times() -> None:
    broken = {
        "status": "resolved",
        "labels": {},
        "startsAt": "0001-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
    }
    problems = problems_of(notification(broken))
    assert "alerts[0].fingerprint: required field is missing" in problems
    assert "alerts[0].startsAt: must be set (got the zero time)" in problems
    assert "alerts[0].endsAt: a resolved alert needs an end time (got the zero time)" in problems


def test_non_object_documents() -> None:
    assert problems_of([1, 2]) == ["$: expected a JSON object, got array"]
    assert problems_of(notification(alert(), "oops")) == ["alerts[1]: expected object, got string"]


def test_truncated_json_is_rejected_with_position() -> None:
    body = json.dumps(notification()).encode()[:-7]
    with pytest.raises(PayloadError) as info:
        decode_json(body)
    assert info.value.message == "body is not valid JSON"
    assert "(char " in info.value.problems[0]


def test_non_utf8_is_rejected() -> None:
    with pytest.raises(PayloadError) as info:
        decode_json(b'{"version": "\xff\xfe"}')
    assert info.value.problems == ["$: invalid UTF-8 at byte 13: invalid start byte"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_json_is_refused_without_crashing(depth: int) -> None:
    body = ("[" * depth + "]" * depth).encode()
    with pytest.raises(PayloadError) as info:
        decode_json(body)
    assert info.value.message == "body is nested too deeply"


def test_jinja_in_labels_is_kept_literally() -> None:
    parsed = parse_notification(json.dumps(notification(alert(model="{{ 7*7 }}"))).encode())
    assert parsed.alerts[0].labels["model"] == "{{ 7*7 }}"


_ODD_VALUES: list[object] = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    "4",
    "firing",
    "resolved",
    {},
    [],
    {"": "a"},
    {"a": 1},
    {"a": "b"},
    ["a"],
    "0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "0000-02-01T00:00:00Z",
    "2024-02-29T10:00:00Z",
    "2023-02-29T10:00:00Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01T10:60:00Z",
    "2024-05-01T10:00:60Z",
    "2024-05-01T10:00:00+02:00",
    "2024-05-01t10:00:00z",
    "2024-05-01T10:00:00Z\n",
    "2024-13-01T10:00:00Z",
    "\u0662\u0660\u0662\u0664-05-01T10:00:00Z",
    "ABCdef0123",
    "xyz",
    "9" * 65,
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
]
_TOP_KEYS = [
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
    "extra",
]
_ALERT_KEYS = [
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
    "extra",
]


def _variants() -> list[object]:
    """Valid notifications with one field removed or replaced by an odd value, at the top and in alerts."""
    base = notification(alert(), alert("resolved", ends_at="2024-05-01T11:00:00Z", feature="age"))
    out: list[object] = [base, [], "x", None]
    for key in _TOP_KEYS:
        for value in [*_ODD_VALUES, _MISSING]:
            doc = json.loads(json.dumps(base))
            doc.pop(key, None) if value is _MISSING else doc.__setitem__(key, value)
            out.append(doc)
    for index in (0, 1):
        for key in _ALERT_KEYS:
            for value in [*_ODD_VALUES, _MISSING]:
                doc = json.loads(json.dumps(base))
                item = doc["alerts"][index]
                item.pop(key, None) if value is _MISSING else item.__setitem__(key, value)
                out.append(doc)
    return out


_MISSING = object()


def test_quick_accept_never_accepts_what_the_full_validator_rejects() -> None:
    """The request path trusts quick_accept alone when it says yes: it must agree with the full parse."""
    accepted = 0
    for document in _variants():
        body = json.dumps(document).encode()
        quick = quick_accept(body)
        if quick is None:
            continue
        accepted += 1
        parsed = parse_notification(decode_json(body))  # raises if quick_accept was unsound
        assert quick == (parsed.group_key, len(parsed.alerts))
    assert accepted > 50  # the fast path is really taken for the ordinary shapes


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        "{}".encode("utf-16"),
        b"\xff\xfe",
        json.dumps(notification(alert(starts_at="0001-01-01T00:00:00Z"))).encode(),
        json.dumps(notification(alert("resolved"))).encode(),  # zero endsAt on a resolved alert
        json.dumps(notification(extra=json.loads("[" * (MAX_JSON_DEPTH) + "]" * (MAX_JSON_DEPTH)))).encode(),
    ],
)
def test_quick_accept_leaves_bad_bodies_to_the_full_validator(body: bytes) -> None:
    assert quick_accept(body) is None
    with pytest.raises(PayloadError):
        parse_notification(decode_json(body))


def test_quick_accept_depth_limit_matches_decode_json() -> None:
    fits = notification(extra=json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)))
    body = json.dumps(fits).encode()
    assert quick_accept(body) == ('{}:{model="churn"}', 1)
    parse_notification(decode_json(body))


def test_an_alert_with_an_empty_status_is_a_400_naming_it_never_stored() -> None:
    # found by schemathesis: "" used to pass the parser and then fail the store's CHECK on every retry
    from receiver.errors import PayloadError
    from receiver.payload import parse_notification
    from tests.support.payloads import alert, notification

    body = notification(alert())
    body["alerts"][0]["status"] = ""
    with pytest.raises(PayloadError) as raised:
        parse_notification(json.dumps(body).encode())
    assert any("alerts[0].status" in str(p) for p in raised.value.problems)
