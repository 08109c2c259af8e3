"""The webhook and read API over real HTTP (waitress on loopback) with a real SQLite file."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from receiver.config import Secret
from tests.support.payloads import alert, notification, write_runbooks
from tests.support.realparts import wait_until
from tests.support.receiver_server import (
    ADMIN_TOKEN,
    WEBHOOK_TOKEN,
    RunningReceiver,
    make_settings,
    start_receiver,
)

HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    (tmp_path / "pw").write_text("basic-pw\n")
    settings = make_settings(
        tmp_path / "data",
        write_runbooks(tmp_path / "runbooks"),
        max_body_bytes=4096,
        rejected_body_cap=1024,
        webhook_basic_user="am",
        webhook_basic_password=Secret("basic-pw"),
    )
    running = start_receiver(settings)
    yield running
    running.stop()


def post(receiver: RunningReceiver, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return requests.post(
        receiver.url + "/api/v1/alerts", data=data, headers=HOOK if headers is None else headers, timeout=5
    )


def rejected(receiver: RunningReceiver) -> list[dict[str, Any]]:
    response = requests.get(receiver.url + "/api/v1/rejected", headers=ADMIN, timeout=5)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["rejected"]
    return items


def incidents(receiver: RunningReceiver, **params: Any) -> dict[str, Any]:
    response = requests.get(receiver.url + "/api/v1/incidents", headers=ADMIN, params=params, timeout=5)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_accepted_notification_becomes_an_incident(receiver: RunningReceiver) -> None:
    response = post(receiver, notification(alert(feature="a"), alert(feature="b", value="0.4")))
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    listed = wait_until(lambda: incidents(receiver)["incidents"], timeout=5, message="incident")
    (incident,) = listed
    assert incident["runbook_id"] == "feature-drift" and incident["severity"] == "SEV1"
    detail = requests.get(
        f"{receiver.url}/api/v1/incidents/{incident['id']}", headers=ADMIN, timeout=5
    ).json()
    assert len(detail["alerts"]) == 2
    assert [e["kind"] for e in detail["timeline"]][:3] == ["opened", "severity", "alert_firing"]


def test_basic_auth_accepted(receiver: RunningReceiver) -> None:
    basic = base64.b64encode(b"am:basic-pw").decode()
    response = post(
        receiver, notification(), {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong",
        f"Bearer {ADMIN_TOKEN}",
        "Basic " + base64.b64encode(b"am:nope").decode(),
        "Basic !!!",
    ],
)
def test_wrong_credentials_are_refused_and_nothing_stored(
    receiver: RunningReceiver, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    response = post(receiver, notification(), headers)
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert response.json()["error"]["type"] == "Unauthorized"
    assert receiver.context.store.pending_count() == 0 and rejected(receiver) == []


def test_invalid_payload_lists_every_problem_and_is_kept(receiver: RunningReceiver) -> None:
    doc = notification(alert(starts_at="yesterday"), truncated="lots")
    response = post(receiver, doc)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "PayloadError"
    assert error["problems"] == [
        'truncatedAlerts: expected integer >= 0, got "lots"',
        'alerts[0].startsAt: expected RFC 3339 time, got "yesterday"',
    ]
    (kept,) = rejected(receiver)
    assert kept["status"] == 400 and json.loads(kept["body"]) == doc and kept["problems"] == error["problems"]
    assert receiver.context.store.pending_count() == 0


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"version": "4", "alerts": [', "body is not valid JSON"),
        (b'{"version": "\xff"}', "body is not valid UTF-8"),
        (b"[" * 2000 + b"]" * 2000, "body is nested too deeply"),
    ],
)
def test_malformed_bodies_get_400(receiver: RunningReceiver, body: bytes, message: str) -> None:
    response = post(receiver, body)
    assert response.status_code == 400 and response.json()["error"]["message"] == message
    (kept,) = rejected(receiver)
    assert base64.b64decode(kept["body_base64"]) == body[:1024]


def test_too_large_by_content_length_and_by_bytes_read(receiver: RunningReceiver) -> None:
    big = json.dumps(notification(*[alert(feature=str(i)) for i in range(40)])).encode()
    assert len(big) > 4096
    response = post(receiver, big)
    assert response.status_code == 413 and response.json()["error"]["type"] == "PayloadTooLarge"
    # chunked transfer (waitress de-chunks it and then sets the length)
    chunked = post(receiver, iter([big[i : i + 1000] for i in range(0, len(big), 1000)]))
    assert chunked.status_code == 413
    kept = rejected(receiver)
    assert [k["status"] for k in kept] == [413, 413]
    assert all(k["truncated"] and k["body_size"] == len(big) for k in kept)
    assert all(base64.b64decode(k["body_base64"]) == big[:1024] for k in kept)


def test_too_large_without_content_length(receiver: RunningReceiver) -> None:
    """A WSGI server that streams a body without CONTENT_LENGTH: the bytes read are counted. waitress always
    sets the length, so this one goes through Flask's test client with a terminated input stream."""
    big = json.dumps(notification(*[alert(feature=str(i)) for i in range(40)])).encode()
    client = receiver.app.test_client()
    response = client.post(
        "/api/v1/alerts",
        input_stream=io.BytesIO(big),
        headers=HOOK,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["problems"] == ["$: more than max_body_bytes 4096 bytes read"]


def test_non_json_content_type_gets_415(receiver: RunningReceiver) -> None:
    response = post(receiver, notification(), {**HOOK, "Content-Type": "text/plain"})
    assert response.status_code == 415
    assert rejected(receiver)[0]["content_type"] == "text/plain"


def test_store_that_cannot_commit_gets_503(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", write_runbooks(tmp_path / "runbooks"), busy_timeout_ms=100)
    running = start_receiver(settings, start_worker=False)
    blocker = sqlite3.connect(tmp_path / "data" / "receiver.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        response = post(running, notification())
        assert response.status_code == 503 and response.json()["error"]["type"] == "StoreUnavailable"
        ready = requests.get(running.url + "/readyz", timeout=5)
        assert ready.status_code == 503 and "store:" in ready.json()["error"]["problems"][0]
        blocker.execute("ROLLBACK")
        assert post(running, notification()).status_code == 200  # Alertmanager's retry succeeds
    finally:
        blocker.close()
        running.stop()


def test_read_api_requires_admin_token_and_validates_params(receiver: RunningReceiver) -> None:
    for headers in ({}, {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}):
        assert requests.get(receiver.url + "/api/v1/incidents", headers=headers, timeout=5).status_code == 401
    bad = requests.get(
        receiver.url + "/api/v1/incidents", headers=ADMIN, params={"state": "exploded"}, timeout=5
    )
    assert bad.status_code == 400 and "'state'" in bad.json()["error"]["message"]
    missing = requests.get(receiver.url + "/api/v1/incidents/999", headers=ADMIN, timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


def test_filters_and_cursor_pagination(receiver: RunningReceiver) -> None:
    models = [f"m{i}" for i in range(5)]
    assert post(receiver, notification(*[alert(model=m) for m in models])).status_code == 200
    wait_until(lambda: len(incidents(receiver)["incidents"]) == 5, timeout=5, message="5 incidents")
    page = incidents(receiver, limit=2)
    seen = [i["model"] for i in page["incidents"]]
    while page["next"]:
        page = requests.get(receiver.url + page["next"], headers=ADMIN, timeout=5).json()
        seen += [i["model"] for i in page["incidents"]]
    assert sorted(seen) == models and len(seen) == 5
    assert [i["model"] for i in incidents(receiver, model="m3")["incidents"]] == ["m3"]
    assert incidents(receiver, state="resolved")["incidents"] == []
    assert len(incidents(receiver, runbook="feature-drift")["incidents"]) == 5


def test_health_ready_and_metrics(receiver: RunningReceiver) -> None:
    assert requests.get(receiver.url + "/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(receiver.url + "/readyz", timeout=5).json()["status"] == "ready"
    post(receiver, notification())
    post(receiver, b"{", HOOK)
    wait_until(lambda: receiver.context.store.pending_count() == 0, timeout=5, message="drained")
    text = requests.get(receiver.url + "/metrics", timeout=5).text
    # every series names the replica that serves it (several replicas share one database)
    assert 'receiver_notifications_total{outcome="accepted",replica="r1"} 1.0' in text
    assert 'receiver_notifications_total{outcome="invalid",replica="r1"} 1.0' in text
    assert 'receiver_incidents{replica="r1",severity="SEV2",state="open"} 1.0' in text
    assert 'receiver_queue_depth{replica="r1"} 0.0' in text
    assert 'receiver_queue_oldest_seconds{replica="r1"} 0.0' in text  # drained: the backlog alert reads 0
    assert 'receiver_processing_lag_seconds_count{replica="r1"} 1.0' in text


def test_unknown_route_uses_the_error_shape(receiver: RunningReceiver) -> None:
    response = requests.get(receiver.url + "/nope", timeout=5)
    assert response.status_code == 404 and response.json()["error"]["code"] == 404
