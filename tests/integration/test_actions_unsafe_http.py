"""Non-idempotent actions against real slow, redirecting and path-sensitive HTTP servers on loopback, and a
real Alertmanager behind a slow proxy (issue 14, part 1): a call sent without an answer is "unknown", never
re-sent, and escalated; redirects are not followed; dot segments cannot leave the allow-listed prefix."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from receiver.actions.base import ActionSettings
from receiver.actions.executor import StepSpec
from tests.support.action_fixtures import make_context, make_executor

Handler = Callable[[BaseHTTPRequestHandler, bytes], None]


class Server:
    """A real threaded HTTP server on loopback; ``handle`` answers; every request is recorded first."""

    def __init__(self, handle: Handler) -> None:
        self.seen: list[tuple[str, str]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.seen.append((self.command, self.path))
                handle(self, body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"{}", **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def servers() -> Iterator[Callable[[Handler], Server]]:
    started: list[Server] = []

    def start(handle: Handler) -> Server:
        started.append(Server(handle))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _slow(seconds: float) -> Handler:
    def handle(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        time.sleep(seconds)
        with_broken_pipe_ignored(lambda: _answer(handler, 200))

    return handle


def with_broken_pipe_ignored(call: Callable[[], None]) -> None:
    with contextlib.suppress(OSError):  # the client gave up waiting, as it should
        call()


def test_http_step_timing_out_after_sending_is_unknown_and_sent_once(tmp_path: Path, servers) -> None:
    slow = servers(_slow(5))
    settings = ActionSettings(http_allow_list=(slow.url + "/deploy",))
    executor = make_executor(tmp_path / "ledger.db", settings)
    step = StepSpec.from_mapping(
        {"action": "http", "url": slow.url + "/deploy/rollback", "timeout": "2s", "retries": 2}, 0
    )
    outcome = executor.run_step(step, make_context(settings))
    time.sleep(0.5)  # nothing else is on its way
    assert slow.seen == [("POST", "/deploy/rollback")], slow.seen
    assert outcome.state == "unknown", outcome
    assert outcome.attempts == 1 and outcome.escalate and "unknown" in outcome.escalate
    assert [e["event"] for e in outcome.timeline][-2:] == ["attempt", "unknown"]
    (row,) = executor.ledger.rows("INC-1")
    assert row.state == "unknown" and (row.reason or "").startswith("unknown:") and row.attempts == 1


def test_connection_refused_is_still_retried(tmp_path: Path, servers) -> None:
    gone = servers(_slow(0))
    url = gone.url
    gone.stop()
    settings = ActionSettings(http_allow_list=(url + "/x",))
    executor = make_executor(tmp_path / "ledger.db", settings)
    outcome = executor.run_step(
        StepSpec.from_mapping({"action": "http", "url": url + "/x", "timeout": "2s", "retries": 2}, 0),
        make_context(settings),
    )
    assert outcome.state == "failed" and outcome.attempts == 3  # never sent: safe to try again


def test_silence_through_a_slow_proxy_is_created_once_and_unknown(
    tmp_path: Path, servers, alertmanager_factory
):
    alertmanager = alertmanager_factory({"route": {"receiver": "null"}, "receivers": [{"name": "null"}]})

    def forward_then_stall(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        upstream = requests.request(
            handler.command,
            alertmanager.url + handler.path,
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        time.sleep(5)  # Alertmanager has created the silence; the answer is late
        with_broken_pipe_ignored(lambda: _answer(handler, upstream.status_code, upstream.content))

    proxy = servers(forward_then_stall)
    settings = ActionSettings(alertmanager_url=proxy.url)
    executor = make_executor(tmp_path / "ledger.db", settings)
    step = StepSpec.from_mapping(
        {
            "action": "silence",
            "matchers": ['model="fraud"'],
            "duration": "30m",
            "timeout": "2s",
            "retries": 2,
        },
        0,
    )
    outcome = executor.run_step(step, make_context(settings))
    time.sleep(0.5)
    assert outcome.state == "unknown" and outcome.escalate, outcome
    silences = requests.get(alertmanager.url + "/api/v2/silences", timeout=5).json()
    assert len(silences) == 1, silences  # sent once: retrying would have made three


def test_redirects_are_not_followed_and_the_3xx_is_recorded(tmp_path: Path, servers) -> None:
    elsewhere = servers(lambda h, _b: _answer(h, 200))
    redirecting = servers(lambda h, _b: _answer(h, 302, b"", Location=elsewhere.url + "/steal"))
    settings = ActionSettings(http_allow_list=(redirecting.url + "/hooks",))
    executor = make_executor(tmp_path / "ledger.db", settings)
    outcome = executor.run_step(
        StepSpec.from_mapping({"action": "http", "url": redirecting.url + "/hooks/x"}, 0),
        make_context(settings),
    )
    assert elsewhere.seen == []
    assert outcome.state == "failed" and "302" in (outcome.error or "") and "/steal" in (outcome.error or "")
    assert outcome.attempts == 1


@pytest.mark.parametrize(
    ("url", "model"),
    [
        ("{base}/hooks/{{{{ labels.model }}}}", "../../admin/delete-all"),
        ("{base}/hooks/{{{{ labels.model }}}}", "%2e%2e/%2e%2e/admin/delete-all"),
        ("{base}/hooks/{{{{ labels.model }}}}", ".."),
        ("{base}/hooks/../admin/delete-all", "fraud"),
        ("{base}/hooks/%2e%2e/admin/delete-all", "fraud"),
        ("{base}/hooks/%252e%252e/admin/delete-all", "fraud"),
    ],
)
def test_dot_segments_never_leave_the_allow_listed_prefix(
    tmp_path: Path, servers, url: str, model: str
) -> None:
    target = servers(lambda h, _b: _answer(h, 200))
    settings = ActionSettings(http_allow_list=(target.url + "/hooks",))
    executor = make_executor(tmp_path / "ledger.db", settings)
    step = StepSpec.from_mapping({"action": "http", "url": url.format(base=target.url)}, 0)
    outcome = executor.run_step(step, make_context(settings, labels={"model": model}))
    assert all(path.startswith("/hooks/") for _method, path in target.seen), target.seen
    assert not any(
        "admin" in path and ".." in path.replace("%2e", ".").replace("%2E", ".") for _m, path in target.seen
    )
    if target.seen:  # a label value arrives as one encoded segment
        assert outcome.state == "succeeded"
    else:
        assert outcome.state == "failed" and "allow_list" in (outcome.error or "")


def test_a_label_with_a_slash_is_one_encoded_segment(tmp_path: Path, servers) -> None:
    target = servers(lambda h, _b: _answer(h, 200))
    settings = ActionSettings(http_allow_list=(target.url + "/hooks",))
    executor = make_executor(tmp_path / "ledger.db", settings)
    step = StepSpec.from_mapping({"action": "http", "url": target.url + "/hooks/{{ labels.model }}?v=1"}, 0)
    outcome = executor.run_step(step, make_context(settings, labels={"model": "team/churn v2"}))
    assert outcome.state == "succeeded", outcome
    assert target.seen == [("POST", "/hooks/team%2Fchurn%20v2?v=1")]


HTTP_RUNBOOK = """\
id: deploy-hook
title: Deploy hook
match: ['incident_type="drift"']
group_by: [model]
severity:
  - {level: SEV2}
contain:
  - {action: http, url: '%s/deploy/{{ labels.model }}', timeout: 2s, retries: 2}
escalate: {after: 30m, to: ml-senior}
"""


@pytest.mark.slow
def test_through_the_server_an_unknown_http_step_is_on_the_timeline_and_escalated(
    tmp_path: Path, servers
) -> None:
    from tests.support.payloads import alert, notification
    from tests.support.realparts import wait_until
    from tests.support.serve_process import start_serve

    slow = servers(_slow(5))
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "deploy.yml").write_text(HTTP_RUNBOOK % slow.url)
    serve = start_serve(tmp_path, runbooks_dir=runbooks, http_allow_list=[slow.url + "/deploy"])
    try:
        assert serve.post(notification(alert(model="fraud"))).status_code == 200

        def timeline() -> list[dict[str, Any]]:
            listed = serve.get("/api/v1/incidents").json()["incidents"]
            if not listed:
                return []
            entries: list[dict[str, Any]] = serve.get(f"/api/v1/incidents/{listed[0]['id']}").json()[
                "timeline"
            ]
            return entries if any(e["kind"] == "escalated" for e in entries) else []

        entries = wait_until(timeline, timeout=30, message="escalated")
        time.sleep(1)
        assert slow.seen == [("POST", "/deploy/fraud")]  # once, never re-sent
        events = [e["data"].get("event") for e in entries if e["kind"] == "action"]
        assert "unknown" in events and "failed" not in events, entries
        escalated = next(e for e in entries if e["kind"] == "escalated")
        assert "unknown" in json.dumps(escalated)
    finally:
        serve.stop()
