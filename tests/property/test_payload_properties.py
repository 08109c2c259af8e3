"""The payload parser: every valid v4 shape is accepted, every invalid one is a 400 naming the path, never
a 500, through :func:`parse_notification` and through the real Flask app; the published JSON Schema agrees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.errors import PayloadError
from receiver.payload import decode_json, parse_notification, quick_accept
from receiver.payload_schema import NOTIFICATION_SCHEMA
from tests.property.strategies import broken_notifications, notifications, shape_breakages
from tests.support.receiver_server import WEBHOOK_TOKEN, make_settings

REPO = Path(__file__).resolve().parents[2]
BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMA = Draft202012Validator(NOTIFICATION_SCHEMA)
AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    data = tmp_path_factory.mktemp("property-app")
    app: Flask = create_app(
        make_settings(data / "data", REPO / "runbooks", responses=False),
        metrics_registry=CollectorRegistry(),
        start_worker=False,
    )
    yield app.test_client()
    app.extensions["receiver"].close()


def _body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@BOUNDED
@given(notifications())
def test_every_valid_shape_is_accepted(doc: dict[str, Any]) -> None:
    parsed = parse_notification(decode_json(_body(doc)))
    assert len(parsed.alerts) == len(doc["alerts"])
    assert [a.labels for a in parsed.alerts] == [a["labels"] for a in doc["alerts"]]  # verbatim
    summary = quick_accept(_body(doc))
    assert summary is None or summary == (doc["groupKey"], len(doc["alerts"]))
    assert SCHEMA.is_valid(doc), list(SCHEMA.iter_errors(doc))[:3]  # the spec's schema admits it too


@BOUNDED
@given(broken_notifications())
def test_every_invalid_shape_names_its_path(case: tuple[Any, str]) -> None:
    doc, path = case
    with pytest.raises(PayloadError) as info:
        parse_notification(decode_json(_body(doc)))
    assert info.value.problems
    assert any(str(p).startswith(f"{path}:") or str(p).startswith(f"{path}.") for p in info.value.problems), (
        path,
        info.value.problems,
    )


@BOUNDED
@given(shape_breakages())
def test_schema_and_parser_agree_on_shape_errors(case: tuple[Any, str]) -> None:
    doc, _ = case
    assert not SCHEMA.is_valid(doc)
    with pytest.raises(PayloadError):
        parse_notification(doc)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.one_of(notifications().map(lambda d: (d, None)), broken_notifications()))
def test_through_the_app_valid_is_200_invalid_is_400_never_500(
    client: FlaskClient, case: tuple[Any, str | None]
) -> None:
    doc, path = case
    answer = client.post("/api/v1/alerts", data=_body(doc), headers=AUTH, content_type="application/json")
    if path is None:
        assert answer.status_code == 200, answer.get_json()
    else:
        assert answer.status_code == 400, answer.get_json()
        problems = answer.get_json()["error"]["problems"]
        assert any(p.startswith(path) for p in problems), (path, problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_never_a_500(client: FlaskClient, body: bytes) -> None:
    answer = client.post("/api/v1/alerts", data=body, headers=AUTH, content_type="application/json")
    assert answer.status_code in (200, 400), answer.get_data()[:300]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(4301, 20000))
def test_a_huge_integer_is_a_400(client: FlaskClient, digits: int) -> None:
    body = b'{"version":"4","truncatedAlerts":' + b"1" * digits + b"}"
    with pytest.raises(PayloadError):
        parse_notification(body)
    answer = client.post("/api/v1/alerts", data=body, headers=AUTH, content_type="application/json")
    assert answer.status_code == 400
