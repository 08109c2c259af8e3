"""The webhook's WSGI fast path answers exactly as the Flask view does, and only for ``POST /api/v1/alerts``.

Both call :func:`receiver.api.webhook.receive`; these tests drive the same requests through the app
(fast path in front) and through Flask's own ``wsgi_app`` behind it, and compare status, headers and body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry
from werkzeug.test import EnvironBuilder, run_wsgi_app

from receiver.api.webhook import WebhookFastPath
from receiver.store import Store
from tests.support.payloads import alert, notification, write_runbooks
from tests.support.receiver_server import ADMIN_TOKEN, WEBHOOK_TOKEN, make_settings

HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    from receiver.app import create_app

    settings = make_settings(tmp_path / "data", write_runbooks(tmp_path / "rb"), max_body_bytes=2048)
    app = create_app(settings, metrics_registry=CollectorRegistry(), start_worker=False)
    yield app
    app.extensions["receiver"].close()


def _call(wsgi: Any, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[str, Any, bytes]:
    environ = EnvironBuilder(path=path, method=method, data=body, headers=list(headers.items())).get_environ()
    app_iter, status, response_headers = run_wsgi_app(wsgi, environ)
    return status, response_headers, b"".join(app_iter)


def _both(app: Flask, method: str, path: str, body: bytes, headers: dict[str, str]) -> list[Any]:
    front = app.wsgi_app
    assert isinstance(front, WebhookFastPath)
    return [_call(wsgi, method, path, body, headers) for wsgi in (front, front.app)]


def _comparable(answer: tuple[str, Any, bytes]) -> tuple[str, dict[str, str], Any]:
    status, headers, body = answer
    document = json.loads(body)
    document.pop("id", None)  # each accepted notification gets its own id
    return status, {k: v for k, v in headers.items() if k != "Content-Length"}, document


@pytest.mark.parametrize(
    ("case", "headers", "body"),
    [
        ("accepted", HOOK, json.dumps(notification(alert(model="m1"))).encode()),
        ("no credentials", {"Content-Type": "application/json"}, b"{}"),
        ("wrong token", {**HOOK, "Authorization": "Bearer nope"}, b"{}"),
        ("not json", {**HOOK, "Content-Type": "text/plain"}, b"{}"),
        ("invalid", HOOK, json.dumps({"version": "4", "alerts": "x"}).encode()),
        ("broken json", HOOK, b'{"version": '),
        ("too large", HOOK, b" " * 4096),
    ],
)
def test_fast_path_answers_as_the_flask_view(
    app: Flask, case: str, headers: dict[str, str], body: bytes
) -> None:
    fast, flask_view = _both(app, "POST", "/api/v1/alerts", body, headers)
    assert _comparable(fast) == _comparable(flask_view), case
    assert fast[0].split()[0] == {"accepted": "200", "too large": "413", "not json": "415"}.get(
        case, "401" if "credentials" in case or "token" in case else "400"
    )
    assert fast[2].endswith(b"\n")


def test_both_paths_commit_the_body(app: Flask) -> None:
    store: Store = app.extensions["receiver"].store
    body = json.dumps(notification(alert(model="m2"))).encode()
    answers = _both(app, "POST", "/api/v1/alerts", body, HOOK)
    ids = [json.loads(b)["id"] for _, _, b in answers]
    assert len(set(ids)) == 2
    assert store.notification_counts() == {"received": 2}


def test_other_methods_and_paths_go_to_flask(app: Flask) -> None:
    front = app.wsgi_app
    status, headers, body = _call(front, "GET", "/api/v1/alerts", b"", {})
    assert status.startswith("405") and "POST" in headers["Allow"]
    assert json.loads(body)["error"]["code"] == 405
    status, _, body = _call(front, "GET", "/healthz", b"", {})
    assert status.startswith("200")
    status, _, _ = _call(front, "POST", "/api/v1/alerts/", b"{}", HOOK)
    assert status.startswith("404")


def test_an_unexpected_error_is_a_json_500_and_logged(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    context = app.extensions["receiver"]

    def broken(body: bytes, group_key: str | None = None) -> int:
        raise RuntimeError("disk on fire")

    context.store.record_notification = broken
    body = json.dumps(notification(alert(model="m3"))).encode()
    fast, flask_view = _both(app, "POST", "/api/v1/alerts", body, HOOK)
    assert _comparable(fast) == _comparable(flask_view)
    assert fast[0].startswith("500")
    assert json.loads(fast[2])["error"]["type"] == "InternalError"
    assert b"disk on fire" not in fast[2]
    assert sum("unhandled error" in r.getMessage() for r in caplog.records) == 2


def test_admin_token_is_not_a_webhook_token(app: Flask) -> None:
    body = json.dumps(notification(alert(model="m4"))).encode()
    fast, _ = _both(app, "POST", "/api/v1/alerts", body, {**HOOK, "Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert fast[0].startswith("401")
