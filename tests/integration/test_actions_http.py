"""``http``, ``page`` and ``notify`` against real loopback HTTP servers (recording_server), and a process
killed with SIGKILL in the middle of an http call (the restart rule for non-idempotent kinds)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from receiver.actions.base import ActionSettings
from receiver.actions.executor import StepSpec
from tests.support.action_fixtures import make_context, make_executor, make_ledger
from tests.support.realparts import wait_until

REPO = Path(__file__).resolve().parents[2]


def http_step(url: str, **extra: Any) -> StepSpec:
    raw = {
        "action": "http",
        "url": url,
        "body": {
            "model": "{{ labels.model }}",
            "incident": "{{ incident.id }}",
            "level": "{{ level }}",
            "nested": {"note": "owner {{ labels.team | default('none') }}"},
            "count": 3,
        },
        **extra,
    }
    return StepSpec.from_mapping(raw, 0)


def test_http_posts_a_rendered_body_to_an_allow_listed_url(tmp_path, recording_server):
    sink = recording_server()
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    settings = ActionSettings(http_allow_list=(sink.url + "/flags",))
    executor = make_executor(tmp_path / "ledger.db", settings)
    labels = {"model": "fraud", "team": "{{ secrets }} <script>"}
    outcome = executor.run_step(
        http_step(sink.url + "/flags/fraud?x=1", token_file=str(token)), make_context(settings, labels=labels)
    )
    assert outcome.state == "succeeded", outcome
    assert len(sink.requests) == 1
    request = sink.requests[0]
    assert request.path == "/flags/fraud?x=1" and request.headers["Authorization"] == "Bearer tok-123"
    assert request.json() == {
        "model": "fraud",
        "incident": "INC-1",
        "level": "SEV2",
        "nested": {"note": "owner {{ secrets }} <script>"},
        "count": 3,
    }
    assert "tok-123" not in repr(outcome) and "tok-123" not in repr(executor.ledger.rows("INC-1"))


def test_http_refuses_urls_outside_the_allow_list(tmp_path, recording_server):
    sink = recording_server()
    settings = ActionSettings(http_allow_list=(sink.url + "/flags",))
    executor = make_executor(tmp_path / "ledger.db", settings)
    for i, url in enumerate(
        [
            sink.url + "/flagsX",
            sink.url + "/other",
            f"http://localhost:{sink.port}/flags/a",
            f"http://user@127.0.0.1:{sink.port}/flags/a",
            "file:///etc/passwd",
        ]
    ):
        outcome = executor.run_step(http_step(url, id=f"s{i}"), make_context(settings))
        assert outcome.state == "failed" and "not under any prefix" in (outcome.error or ""), url
        assert outcome.attempts == 1
    assert sink.requests == [] and sink.attempts == 0


def test_http_retries_5xx_and_fails_on_4xx(tmp_path, recording_server):
    flaky = recording_server(fail_first=2, fail_status=503)
    settings = ActionSettings(http_allow_list=(flaky.url,))
    executor = make_executor(tmp_path / "ledger.db", settings)
    ok = executor.run_step(http_step(flaky.url + "/deploy", retries=3), make_context(settings))
    assert ok.state == "succeeded" and ok.attempts == 3 and flaky.attempts == 3 and len(flaky.requests) == 1
    rejecting = recording_server(status=422, response_body=b'{"error": "bad flag"}')
    settings = ActionSettings(http_allow_list=(rejecting.url,))
    executor = make_executor(tmp_path / "ledger2.db", settings)
    bad = executor.run_step(http_step(rejecting.url + "/deploy", retries=3), make_context(settings))
    assert bad.state == "failed" and bad.attempts == 1 and "answered 422" in (bad.error or "")
    assert "bad flag" in (bad.error or "")


def test_page_trigger_and_resolve_are_events_v2_shaped(tmp_path, recording_server):
    pager = recording_server(status=202, response_body=b'{"status": "success"}')
    key_file = tmp_path / "routing_key"
    key_file.write_text("R0UT1NG\n")
    settings = ActionSettings(pager_url=pager.url + "/v2/enqueue", pager_routing_key_file=str(key_file))
    executor = make_executor(tmp_path / "ledger.db", settings)
    ctx = make_context(settings, severity="SEV1", incident_key="fraud/drift/abc")
    outcome = executor.run_step(
        StepSpec.from_mapping(
            {
                "action": "page",
                "service": "ml-serving",
                "summary": "{{ labels.model }} drifting ({{ level }})",
            },
            0,
        ),
        ctx,
    )
    assert outcome.state == "succeeded", outcome
    trigger = pager.bodies()[0]
    assert trigger["routing_key"] == "R0UT1NG" and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "fraud/drift/abc"
    assert trigger["payload"]["summary"] == "fraud drifting (SEV1)"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "ml-serving"
    assert trigger["payload"]["custom_details"]["incident_id"] == "INC-1"
    assert "R0UT1NG" not in repr(outcome) and "R0UT1NG" not in repr(executor.ledger.rows("INC-1"))
    executor.recover(ctx)
    resolve = pager.bodies()[1]
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == "fraud/drift/abc"
    assert resolve["payload"]["timestamp"] and len(pager.requests) == 2


def test_page_without_a_routing_key_file_is_a_clear_error(tmp_path, recording_server):
    pager = recording_server()
    settings = ActionSettings(pager_url=pager.url, pager_routing_key_file=str(tmp_path / "missing"))
    executor = make_executor(tmp_path / "ledger.db", settings)
    outcome = executor.run_step(StepSpec.from_mapping({"action": "page"}, 0), make_context(settings))
    assert outcome.state == "failed" and "cannot read pager routing key file" in (outcome.error or "")
    assert pager.requests == []


def test_notify_enqueues_once_with_a_dedupe_key_and_survives_a_template_error(tmp_path):
    queued: list[tuple[str, str, dict[str, Any], str]] = []
    settings = ActionSettings()
    executor = make_executor(tmp_path / "ledger.db", settings)
    ctx = make_context(settings, notifier=lambda *args: queued.append(args))
    steps = [
        StepSpec.from_mapping(
            {
                "action": "notify",
                "channel": "ml-incidents",
                "event": "update",
                "template": "{{ labels.model }} at {{ level }}",
            },
            0,
        ),
        StepSpec.from_mapping({"action": "notify", "channel": "ml-incidents", "template": "{{ nope.x }}"}, 1),
    ]
    outcomes = executor.run_steps(steps, ctx)
    executor.run_steps(steps, ctx)  # a repeat enqueues nothing more
    assert [o.state for o in outcomes] == ["succeeded", "succeeded"]
    assert len(queued) == 2
    incident, channel, payload, dedupe = queued[0]
    assert (incident, channel, dedupe) == ("INC-1", "ml-incidents", "INC-1:contain:notify-0")
    assert payload["text"] == "fraud at SEV2"
    assert queued[1][2]["text"].startswith("[template error:") and "INC-1" in queued[1][2]["text"]


_CRASHER = """
import sys
from receiver.actions.base import ActionSettings
from receiver.actions.executor import StepSpec
from tests.support.action_fixtures import make_context, make_executor
ledger_path, url = sys.argv[1:3]
settings = ActionSettings(http_allow_list=(url,), default_timeout=60)
executor = make_executor(ledger_path, settings, clock=__import__("time").time)
executor.run_step(StepSpec.from_mapping({"action": "http", "url": url + "/deploy", "body": {}}, 0),
                  make_context(settings, incident_id="INC-CRASH"))
"""


def test_a_process_killed_mid_http_call_leaves_it_interrupted_not_repeated(tmp_path, recording_server):
    hang = socket.socket()  # accepts the connection, never answers: the call is in flight when we kill
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    url = f"http://127.0.0.1:{hang.getsockname()[1]}"
    ledger_path = tmp_path / "ledger.db"
    ledger = make_ledger(ledger_path)
    proc = subprocess.Popen([sys.executable, "-c", _CRASHER, str(ledger_path), url], cwd=REPO)
    try:
        wait_until(
            lambda: [r for r in ledger.rows("INC-CRASH") if r.state == "running" and r.attempts == 1],
            timeout=30,
            message="the http step to be running",
        )
        hang.settimeout(10)
        conn, _ = hang.accept()  # the request really reached the socket
        proc.kill()
        proc.wait(timeout=10)
    finally:
        hang.close()
    [row] = ledger.rows("INC-CRASH")
    assert row.state == "running"
    sink = recording_server()
    settings = ActionSettings(http_allow_list=(url, sink.url))
    # a fresh process after the lease ran out: the row is adopted and recorded as interrupted
    executor = make_executor(ledger_path, settings, clock=lambda: time.time() + 3600)
    outcomes = executor.resume_interrupted(lambda r: make_context(settings, incident_id=r.key.incident_id))
    assert [o.state for o in outcomes] == ["interrupted"] and outcomes[0].escalate
    assert ledger.rows("INC-CRASH")[0].state == "interrupted"
    again = executor.run_step(
        StepSpec.from_mapping({"action": "http", "url": url + "/deploy", "body": {}}, 0),
        make_context(settings, incident_id="INC-CRASH"),
    )
    assert again.duplicate and again.state == "interrupted"
    conn.close()
