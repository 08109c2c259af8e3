"""A 1 MB annotation through every channel type (Slack, Teams, generic webhook) and the PagerDuty-shaped
``page`` action, each POSTed to a real loopback endpoint that enforces the platform's documented limits
and answers 400 past them, as the platforms do (issue 14, part 1)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from receiver.actions.base import ActionSettings
from receiver.actions.executor import StepSpec
from receiver.comms.channels import ChannelSet
from receiver.comms.message import ActionSummary, Links, ModelVersions, StatusUpdate
from receiver.comms.templates import render_message
from tests.support.action_fixtures import make_context, make_executor

pytestmark = pytest.mark.timeout(60)

BIG = ("The feature store returned stale rows for every shard & <!channel> " * 16000)[:1_000_000]
INCIDENT_URL = "http://receiver.local/incidents/42"


def _slack_problems(payload: dict[str, Any]) -> list[str]:
    problems = []
    blocks = payload.get("blocks", [])
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks > 50")
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        if block["type"] == "section" and len(text) > 3000:
            problems.append(f"section text {len(text)} > 3000")
        if block["type"] == "header" and len(text) > 150:
            problems.append(f"header text {len(text)} > 150")
        for element in block.get("elements", []):
            if len(element["text"]["text"]) > 75 or len(element.get("url", "")) > 3000:
                problems.append("button too long")
    if len(payload.get("text", "")) > 40000:
        problems.append("text > 40000")
    return problems


LIMITS = {
    "/slack": lambda payload, size: _slack_problems(payload),
    "/teams": lambda payload, size: [f"{size} bytes > 28 KB"] if size > 28 * 1024 else [],
    "/hook": lambda payload, size: [f"{size} bytes > 256 KiB"] if size > 256 * 1024 else [],
    "/pagerduty": lambda payload, size: (
        ([f"{size} bytes > 512 KB"] if size > 512 * 1024 else [])
        + (["summary > 1024"] if len(payload.get("payload", {}).get("summary", "")) > 1024 else [])
    ),
}


class PlatformSink:
    """Real HTTP endpoints at /slack, /teams, /hook, /pagerduty that refuse what the platform refuses."""

    def __init__(self) -> None:
        self.received: dict[str, Any] = {}
        self.refused: dict[str, list[str]] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                payload = json.loads(raw)
                problems = LIMITS[self.path](payload, len(raw))
                if problems:
                    sink.refused[self.path] = problems
                else:
                    sink.received[self.path] = payload
                status = 400 if problems else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sink() -> Iterator[PlatformSink]:
    running = PlatformSink()
    yield running
    running.stop()


def _update() -> StatusUpdate:
    return StatusUpdate(
        incident_id="42",
        event="opened",
        severity="SEV2",
        state="open",
        title="Feature drift on fraud: " + BIG[:5000],
        model=ModelVersions("fraud", "v4", "v3"),
        impact=BIG,
        summary=BIG,
        actions=(ActionSummary("traffic_split", "succeeded", "50% to v3"),),
        next_update_at=datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
        links=Links(incident=INCIDENT_URL, dashboard="http://grafana.local/d/1"),
        labels={"model": "fraud"},
        annotations={"description": BIG, "summary": BIG},
    )


@pytest.mark.parametrize(("kind", "path"), [("slack", "/slack"), ("teams", "/teams"), ("webhook", "/hook")])
@pytest.mark.parametrize("audience", ["oncall", "stakeholder"])
def test_a_1mb_annotation_fits_every_channel(
    tmp_path: Path, sink: PlatformSink, kind: str, path: str, audience: str
) -> None:
    (tmp_path / "url").write_text(sink.url + path)
    channels = ChannelSet.from_config(
        {"c": {"type": kind, "url_file": str(tmp_path / "url"), "audience": audience}}
    )
    channel = channels["c"]
    assert channel.send(channel.build_payload(render_message(_update(), audience))) == 200, sink.refused
    text = json.dumps(sink.received[path])
    if audience == "oncall" or kind == "webhook":  # the stakeholder wording leaves the annotation out
        assert re.search(r"cut: [0-9,]{9,} characters in all; full text: " + re.escape(INCIDENT_URL), text)
        assert "The feature store returned stale rows" in text  # the start is still there to read


def test_a_1mb_annotation_in_a_page_fits_pagerduty(tmp_path: Path, sink: PlatformSink) -> None:
    (tmp_path / "routing-key").write_text("R" * 32)
    settings = ActionSettings(
        pager_url=sink.url + "/pagerduty", pager_routing_key_file=str(tmp_path / "routing-key")
    )
    executor = make_executor(tmp_path / "ledger.db", settings)
    step = StepSpec.from_mapping(
        {
            "action": "page",
            "service": "ml",
            "summary": "{{ annotations.description }}",
            "custom_details": {"description": "{{ annotations.description }}"},
        },
        0,
    )
    ctx = make_context(settings, annotations={"description": BIG})
    outcome = executor.run_step(step, ctx)
    assert outcome.state == "succeeded", (outcome, sink.refused)
    event = sink.received["/pagerduty"]
    assert event["routing_key"] == "R" * 32
    assert "cut: 1,000,000 characters in all" in event["payload"]["custom_details"]["description"]


def test_a_1mb_annotation_through_the_slack_app_keeps_its_buttons_within_50_blocks(tmp_path: Path) -> None:
    from receiver.comms.slack_app import SlackAppChannel, SlackUsers
    from receiver.config import Secret

    (tmp_path / "bot-token").write_text("xoxb-test\n")
    channel = SlackAppChannel(
        "ml-incidents",
        "http://127.0.0.1:9/api",  # payload only: nothing is sent
        conversation="C123",
        token_file=tmp_path / "bot-token",
        signing_secret=Secret("s"),
        users=SlackUsers({}),
    )
    payload = channel.build_payload(render_message(_update(), "oncall", None))
    assert _slack_problems(payload) == []
    assert payload["blocks"][-1]["type"] == "actions"  # Acknowledge / Recover survive the cut
    labels = [e["text"]["text"] for e in payload["blocks"][-1]["elements"]]
    assert labels[:2] == ["Acknowledge", "Recover"]
