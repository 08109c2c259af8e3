"""Channels against real loopback HTTP servers: payload shapes, literal alert data, errors, secret URLs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receiver.comms.channels import ChannelSet
from receiver.comms.message import ActionSummary, Links, ModelVersions, StatusUpdate
from receiver.comms.templates import render_message
from receiver.errors import ConfigError, DeliveryError
from tests.support.realparts import RecordingServer, free_port

pytestmark = pytest.mark.timeout(30)

HOSTILE = "{{ 7*7 }} {% raw %} <b>html</b> <!channel> & co"


def update(**overrides: Any) -> StatusUpdate:
    fields: dict[str, Any] = dict(
        incident_id="42",
        event="opened",
        severity="SEV2",
        state="open",
        title=f"Drift on {HOSTILE}",
        model=ModelVersions("fraud", "v4", "v3"),
        impact=HOSTILE,
        summary=HOSTILE,
        actions=(ActionSummary("traffic_split", "succeeded", "50% to v3"),),
        owners={"comms": "ml-comms"},
        next_update_at=datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
        links=Links(
            dashboard="http://grafana.local/d/1",
            incident="http://receiver.local/incidents/42",
            runbook="javascript:alert(1)",
        ),
        labels={"model": HOSTILE},
        annotations={"description": HOSTILE},
    )
    fields.update(overrides)
    return StatusUpdate(**fields)


def url_file(tmp_path: Path, name: str, url: str) -> str:
    path = tmp_path / f"{name}.url"
    path.write_text(url + "\n")
    return str(path)


@pytest.fixture
def sinks(recording_server: Callable[..., RecordingServer]) -> dict[str, RecordingServer]:
    return {"slack": recording_server(), "teams": recording_server(), "webhook": recording_server()}


@pytest.fixture
def channels(tmp_path: Path, sinks: dict[str, RecordingServer]) -> ChannelSet:
    (tmp_path / "hook.url").write_text(sinks["webhook"].url + "/hook")
    config = {
        "ml-incidents": {
            "type": "slack",
            "url_file": url_file(tmp_path, "slack", sinks["slack"].url + "/T/B/x"),
        },
        "exec-updates": {"type": "teams", "url_env": "TEAMS_URL", "audience": "stakeholder"},
        "pager-bridge": {"type": "webhook", "url_file": "hook.url", "timeout": 2},  # relative to base_dir
    }
    return ChannelSet.from_config(
        config, base_dir=tmp_path, environ={"TEAMS_URL": sinks["teams"].url + "/teams"}
    )


def test_slack_payload_text_and_blocks(channels: ChannelSet, sinks: dict[str, RecordingServer]) -> None:
    slack = channels["ml-incidents"]
    message = render_message(update(), slack.audience)
    assert slack.send(slack.build_payload(message)) == 200
    [req] = sinks["slack"].requests
    assert req.path == "/T/B/x" and req.headers["Content-Type"] == "application/json"
    body = req.json()
    # mrkdwn text: Slack's three control characters are escaped, so nothing is parsed (no @channel ping)
    assert "&lt;b&gt;html&lt;/b&gt; &lt;!channel&gt; &amp; co" in body["text"]
    assert "<!channel>" not in body["text"] and "{{ 7*7 }} {% raw %}" in body["text"]
    header, *sections, actions = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert header["text"]["text"] == message.title
    assert all(s["type"] == "section" and s["text"]["type"] == "plain_text" for s in sections)
    assert "".join(s["text"]["text"] for s in sections) == message.text
    assert HOSTILE in message.text  # plain_text shows it literally
    assert actions["type"] == "actions"
    assert [(b["text"]["text"], b["url"]) for b in actions["elements"]] == [
        ("Incident", "http://receiver.local/incidents/42"),
        ("Dashboard", "http://grafana.local/d/1"),
    ]


def test_teams_adaptive_card(channels: ChannelSet, sinks: dict[str, RecordingServer]) -> None:
    teams = channels["exec-updates"]
    message = render_message(update(), teams.audience)
    assert message.audience == "stakeholder"
    teams.send(teams.build_payload(message))
    body = sinks["teams"].bodies()[0]
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, *lines = card["body"]
    assert title["text"] == message.title and title["weight"] == "Bolder"
    assert "\n".join(block["text"] for block in lines) == message.text
    assert f"What is affected: {HOSTILE}" in message.text
    assert [a["url"] for a in card["actions"]] == [
        "http://receiver.local/incidents/42",
        "http://grafana.local/d/1",
    ]


def test_generic_webhook_carries_words_and_structure(
    channels: ChannelSet, sinks: dict[str, RecordingServer]
) -> None:
    hook = channels["pager-bridge"]
    upd = update()
    message = render_message(upd, hook.audience)
    hook.send(hook.build_payload(message), idempotency_key="42:opened:0:pager-bridge:oncall")
    [req] = sinks["webhook"].requests
    assert req.headers["Idempotency-Key"] == "42:opened:0:pager-bridge:oncall"
    body = req.json()
    assert body["version"] == 1 and body["event"] == "opened" and body["incident_id"] == "42"
    assert body["text"] == message.text and body["fallback"] is False and body["template_error"] is None
    assert body["update"]["labels"]["model"] == HOSTILE
    assert StatusUpdate.from_json(body["update"]) == upd


def test_fallback_message_goes_out_with_the_error(
    channels: ChannelSet, sinks: dict[str, RecordingServer]
) -> None:
    hook = channels["pager-bridge"]
    message = render_message(update(), "oncall", {"opened": "{{ labels.model | no_such_filter }}"})
    hook.send(hook.build_payload(message))
    body = sinks["webhook"].bodies()[0]
    assert body["fallback"] is True and "no_such_filter" in body["template_error"]
    assert "no_such_filter" in body["text"] and "Incident 42" in body["text"]


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (404, False), (410, False), (429, True), (500, True), (503, True)]
)
def test_status_classification(
    tmp_path: Path, recording_server: Callable[..., RecordingServer], status: int, retryable: bool
) -> None:
    sink = recording_server(status=status, response_body=b"no_service")
    channels = ChannelSet.from_config({"c": {"type": "slack", "url_file": url_file(tmp_path, "c", sink.url)}})
    with pytest.raises(DeliveryError) as info:
        channels["c"].send({"text": "x"})
    assert info.value.retryable is retryable and info.value.status == status
    assert f"slack channel 'c': HTTP {status}: no_service" == info.value.message


def test_transport_errors_are_retryable_and_never_show_the_url(tmp_path: Path) -> None:
    secret = f"http://127.0.0.1:{free_port()}/services/T000/B000/SECRETTOKEN"
    channels = ChannelSet.from_config({"c": {"type": "slack", "url_env": "HOOK"}}, environ={"HOOK": secret})
    with pytest.raises(DeliveryError) as info:
        channels["c"].send({"text": "x"})
    assert info.value.retryable and "connection failed" in info.value.message
    assert "SECRETTOKEN" not in info.value.message and "SECRETTOKEN" not in repr(channels["c"])


def test_config_errors_name_every_problem_without_leaking(tmp_path: Path) -> None:
    (tmp_path / "empty.url").write_text("  \n")
    (tmp_path / "notaurl.url").write_text("SECRETTOKEN\n")
    with pytest.raises(ConfigError) as info:
        ChannelSet.from_config(
            {
                "a": {"type": "irc", "url_env": "A"},
                "b": {"type": "slack", "url_file": str(tmp_path / "missing.url")},
                "c": {"type": "slack", "url_file": str(tmp_path / "empty.url")},
                "d": {"type": "slack", "url_file": str(tmp_path / "notaurl.url")},
                "e": {"type": "teams", "url_env": "E", "url_file": "x"},
                "f": {"type": "webhook", "url": "http://x", "audience": "board"},
                "g": {"type": "webhook", "url_env": "G", "timeout": 0, "colour": "red"},
                "h": "slack",
            },
            environ={"A": "http://a", "G": "http://g"},
        )
    problems = info.value.problems
    assert "channels.a.type: 'irc' is not one of slack, teams, webhook" in problems
    assert any(p.startswith("channels.b.url_file: cannot read") for p in problems)
    assert any(p.startswith("channels.c: url_file") and p.endswith("is empty") for p in problems)
    assert any(p.startswith("channels.d: url_file") and "does not hold an http(s) URL" in p for p in problems)
    assert any(p.startswith("channels.e: set exactly one of url_file or url_env") for p in problems)
    assert any(p.startswith("channels.f.audience: 'board'") for p in problems)
    assert any(p.startswith("channels.f: set exactly one") for p in problems)
    assert any(p.startswith("channels.g.timeout") for p in problems)
    assert "channels.g: unknown setting(s) colour" in problems
    assert "channels.h: expected a mapping with type and url_file/url_env" in problems
    assert "SECRETTOKEN" not in info.value.message
    with pytest.raises(ConfigError, match="environment variable 'NOPE' is not set"):
        ChannelSet.from_config({"x": {"type": "slack", "url_env": "NOPE"}}, environ={})
    with pytest.raises(KeyError, match="unknown channel 'zz'; configured channels: x"):
        ChannelSet.from_config({"x": {"type": "slack", "url_env": "X"}}, environ={"X": "http://x"})["zz"]
