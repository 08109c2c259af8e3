"""schemathesis against a live receiver (real waitress, real SQLite store), bounded in examples and time.

Every operation of ``GET /api/v1/openapi.json`` is exercised with generated valid and invalid requests and
every check schemathesis has: no 5xx, status codes, content types and bodies as documented, invalid input
refused, and ``ignored_auth``: each operation that declares a token refuses requests without it or with a
wrong one. Admin routes run with the admin token, the webhook with the webhook token (two runs). The explicit
token test below does the same for every secured operation without relying on generation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from receiver.api.openapi import OPERATIONS
from tests.support.receiver_server import (
    ADMIN_TOKEN,
    WEBHOOK_TOKEN,
    RunningReceiver,
    make_settings,
    start_receiver,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 25
MAX_SECONDS = 40  # per run; two runs


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningReceiver]:
    data = tmp_path_factory.mktemp("contract")
    running = start_receiver(make_settings(data / "data", REPO / "runbooks"))
    yield running
    running.stop()


def _schemathesis(receiver: RunningReceiver, tmp_path: Path, *args: str) -> None:
    report = tmp_path / "schemathesis.txt"
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{receiver.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--request-timeout",
        "5",
        "--seed",
        "20261202",
        "--generation-codec",
        "utf-8",
        "--no-color",
        *args,
    ]
    with report.open("w") as out:
        result = subprocess.run(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=MAX_SECONDS + 120,
            check=False,
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
        )
    text = report.read_text(errors="replace")
    assert result.returncode == 0, text[-12000:]


@pytest.mark.slow
def test_admin_and_open_routes_conform(receiver: RunningReceiver, tmp_path: Path) -> None:
    # the console (session cookie + CSRF) and the signed Slack/PagerDuty callbacks have their own checks
    # below; a bearer token reaches none of them
    _schemathesis(
        receiver,
        tmp_path,
        "--exclude-path",
        "/api/v1/alerts",
        "--exclude-path-regex",
        "^/(incidents|console|console-static|login|logout|slack|pagerduty)(/|$)|^/$",
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
    )


@pytest.mark.slow
def test_webhook_conforms(receiver: RunningReceiver, tmp_path: Path) -> None:
    # positive_data_acceptance is left out for the webhook: JSON Schema cannot say all the parser requires
    # (calendar dates, Go's zero time, an integral number written without ".0"), so some schema-valid
    # bodies are rightly a 400; tests/property/test_payload_schema.py checks the agreement instead
    _schemathesis(
        receiver,
        tmp_path,
        "--include-path",
        "/api/v1/alerts",
        "--exclude-checks",
        "positive_data_acceptance",
        "-H",
        f"Authorization: Bearer {WEBHOOK_TOKEN}",
    )


@pytest.mark.parametrize(
    "op", [o for o in OPERATIONS if o.security in ("admin", "webhook")], ids=lambda o: f"{o.method} {o.path}"
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}", "Bearer "])
def test_every_secured_route_refuses_missing_or_wrong_token(
    receiver: RunningReceiver, op: object, auth: str | None
) -> None:
    from receiver.api.openapi import Operation

    assert isinstance(op, Operation)
    path = _fill(op.path)
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    if op.security == "webhook" and auth == "Bearer wrong-token":
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"  # the admin token is not the webhook's
    if op.security == "admin" and auth == "Bearer wrong-token":
        headers["Authorization"] = f"Bearer {WEBHOOK_TOKEN}"  # and the webhook token is not the admin's
    answer = requests.request(op.method.upper(), receiver.url + path, headers=headers, data=b"{}", timeout=5)
    assert answer.status_code == 401, answer.text
    assert "WWW-Authenticate" in answer.headers
    assert answer.json()["error"]["code"] == 401


def _fill(path: str) -> str:
    return (
        path.replace("{incident_id}", "1")
        .replace("{approval_id}", "1")
        .replace("{decision}", "approve")
        .replace("{action}", "ack")
        .replace("{runbook_id}", "bad-release")
    )


@pytest.mark.parametrize(
    "op", [o for o in OPERATIONS if o.security == "session"], ids=lambda o: f"{o.method} {o.path}"
)
def test_every_console_route_needs_a_session_even_with_a_token(receiver: RunningReceiver, op: object) -> None:
    from receiver.api.openapi import Operation

    assert isinstance(op, Operation)
    answer = requests.request(
        op.method.upper(),
        receiver.url + _fill(op.path),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        data={"csrf_token": "forged"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code in (303, 403), answer.text[:300]
    if answer.status_code == 303:
        assert answer.headers["Location"].startswith("/login")
    assert str(answer.status_code) in op.responses


@pytest.mark.parametrize(
    "op", [o for o in OPERATIONS if o.security in ("slack", "pagerduty")], ids=lambda o: o.path
)
def test_unsigned_callbacks_are_refused(receiver: RunningReceiver, op: object) -> None:
    from receiver.api.openapi import Operation

    assert isinstance(op, Operation)
    # not configured on this receiver: 404 naming the setting (tests/integration/test_slack_pagerduty.py
    # checks the 401s of a configured one: bad signature, stale timestamp, replay)
    answer = requests.post(receiver.url + op.path, data=b"payload=%7B%7D", timeout=5)
    assert answer.status_code == 404 and "404" in op.responses
    assert "configured" in answer.json()["error"]["message"] or "enabled" in answer.json()["error"]["message"]
