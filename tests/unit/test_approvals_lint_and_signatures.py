"""The approval block in runbooks (schema and semantic lint with file:line), the typed model, the request
signatures of Slack (v0) and PagerDuty (v1), and the slack_app channel's configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from receiver.cli import main
from receiver.comms.channels import ChannelSet
from receiver.comms.slack_app import SlackAppChannel
from receiver.config import Secret
from receiver.errors import ConfigError, SignatureError
from receiver.runbooks.approval import ApprovalSpec, role_allows
from receiver.signatures import pagerduty_signature, slack_signature, verify_pagerduty, verify_slack

HEAD = "id: drift\ntitle: Drift\nmatch: ['incident_type=\"drift\"']\ncontain:\n"


def _lint(tmp_path: Path, step: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    (tmp_path / "a.yml").write_text(HEAD + step)
    code = main(["lint", str(tmp_path)])
    return code, capsys.readouterr().out.strip().splitlines()


def test_a_valid_gate_lints_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step = (
        "  - action: traffic_split\n    weight: 50\n"
        "    approve: {when: 'level == \"SEV3\"', timeout: 10m, on_timeout: proceed, role: responder}\n"
    )
    assert _lint(tmp_path, step, capsys) == (0, ["1 runbooks OK"])


def test_gate_problems_are_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step = (
        "  - action: traffic_split\n    weight: 50\n    approve:\n"
        "      when: 'levle == \"SEV3\"'\n      timeout: soon\n      on_timeout: maybe\n      roles: admin\n"
    )
    code, lines = _lint(tmp_path, step, capsys)
    where = str(tmp_path / "a.yml")
    assert code == 1
    assert (
        f"{where}:9: contain[0].approve.timeout: 'soon' is not a Prometheus-style duration"
        " such as 30s, 5m, 1h30m" in lines
    )
    assert any(line.startswith(f"{where}:10: contain[0].approve.on_timeout:") for line in lines)
    assert any(
        line.startswith(f"{where}:11: contain[0].approve.roles: unknown field 'roles'") for line in lines
    )
    assert any(
        line.startswith(f"{where}:8: contain[0].approve.when: unknown name(s) levle") for line in lines
    ), lines


def test_gate_needs_timeout_and_on_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _lint(tmp_path, "  - {action: traffic_split, weight: 50, approve: {role: admin}}\n", capsys)
    assert code == 1
    assert any("contain[0].approve.timeout: required field is missing" in line for line in lines)
    assert any("contain[0].approve.on_timeout: required field is missing" in line for line in lines)


def test_typed_model() -> None:
    spec = ApprovalSpec.from_mapping({"timeout": "10m", "on_timeout": "skip"})
    assert (spec.timeout_seconds, spec.role, spec.when) == (600.0, "responder", None)
    for bad, message in (
        ({"timeout": "10m", "on_timeout": "later"}, "on_timeout"),
        ({"timeout": "0s", "on_timeout": "skip"}, "longer than 0s"),
        ({"timeout": "10m", "on_timeout": "skip", "role": "viewer"}, "role"),
        ("yes", "expected a mapping"),
    ):
        with pytest.raises(ValueError, match=message):
            ApprovalSpec.from_mapping(bad)
    assert role_allows("admin", "responder") and role_allows("responder", "responder")
    assert not role_allows("viewer", "responder") and not role_allows("responder", "admin")
    assert not role_allows(None, "responder")


def test_slack_v0_signature() -> None:
    secret, body, now = Secret("s3cret"), b"payload=%7B%7D", 1_800_000_000.0
    ts = str(int(now))
    good = slack_signature("s3cret", ts, body)
    verify_slack(secret, ts, body, good, now=now + 299)
    with pytest.raises(SignatureError, match="stale"):
        verify_slack(secret, ts, body, good, now=now + 301)
    with pytest.raises(SignatureError, match="stale"):
        verify_slack(secret, ts, body, good, now=now - 301)
    with pytest.raises(SignatureError, match="bad Slack request signature"):
        verify_slack(secret, ts, body + b"x", good, now=now)
    with pytest.raises(SignatureError, match="missing"):
        verify_slack(secret, None, body, good, now=now)
    with pytest.raises(SignatureError, match="not a number"):
        verify_slack(secret, "soon", body, good, now=now)


def test_pagerduty_v1_signatures_any_of_several() -> None:
    secret, body = Secret("pd"), b'{"event": {}}'
    good = pagerduty_signature("pd", body)
    verify_pagerduty(secret, body, good)
    verify_pagerduty(secret, body, f"v1=00ff, {good}")
    for header in (None, "", "v1=00ff", good.replace("v1=", "v0="), pagerduty_signature("other", body)):
        with pytest.raises(SignatureError):
            verify_pagerduty(secret, body, header)


def test_slack_app_channel_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("xoxb-1\n")
    (tmp_path / "secret").write_text("sig\n")
    (tmp_path / "users.yml").write_text("users: {U1: responder}\n")
    spec = {
        "type": "slack_app",
        "channel": "C1",
        "bot_token_file": "token",
        "signing_secret_file": "secret",
        "users_file": "users.yml",
        "api_url": "http://127.0.0.1:1/api",
    }
    channels = ChannelSet.from_config({"ops": spec}, base_dir=tmp_path, session=requests.Session())
    channel = channels["ops"]
    assert isinstance(channel, SlackAppChannel) and channel.users.role_of("U1") == "responder"
    assert channel.users.role_of("U2") == "viewer" and "xoxb" not in repr(channel)
    (tmp_path / "bad-users.yml").write_text("U1: boss\n")
    broken = {
        **spec,
        "channel": "",
        "signing_secret_file": "missing",
        "users_file": "bad-users.yml",
        "url": "x",
    }
    with pytest.raises(ConfigError) as raised:
        ChannelSet.from_config({"ops": broken}, base_dir=tmp_path)
    text = str(raised.value)
    assert "channels.ops.channel" in text and "channels.ops.signing_secret_file: cannot read" in text
    assert (
        "role 'boss'" in text
        and "unknown setting(s) url" in text
        and "sig" not in text.replace("signing", "")
    )
