"""Slack app mode and PagerDuty both ways, against real local HTTP servers standing in for the Slack Web API
and the PagerDuty Events API (each records what it receives), with a real receiver app on waitress.

Signed requests are built the way Slack and PagerDuty sign them (HMAC-SHA256 with the secrets from files).
Valid ones are acted on once, also when delivered twice; a bad signature or a stale timestamp gets 401.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from receiver.signatures import pagerduty_signature, slack_signature
from tests.support.payloads import alert, notification
from tests.support.realparts import RecordingServer, wait_until
from tests.support.receiver_server import (
    ADMIN_TOKEN,
    WEBHOOK_TOKEN,
    RunningReceiver,
    make_settings,
    start_receiver,
)

pytestmark = pytest.mark.timeout(120)

SIGNING_SECRET = "slack-signing-secret-for-tests"
PD_SECRET = "pagerduty-webhook-secret-for-tests"
CONSOLE = "http://console.example:9099"
INCIDENT_KEY = 'two-way|{"model":"churn"}'

RUNBOOK = """
id: two-way
title: Drift with people in the loop (test)
match: ['incident_type="drift"']
group_by: [model]
severity:
  - {level: SEV3}
contain:
  - {id: page-oncall, action: page, service: ml-oncall}
  - id: call-hook
    action: http
    url: '%(hook)s/contain'
    approve: {timeout: 1h, on_timeout: skip, role: responder}
comms: {channels: [ops]}
"""

HDR = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class TwoWay:
    receiver: RunningReceiver
    slack: RecordingServer
    pager: RecordingServer
    hook: RecordingServer

    def incident(self) -> dict[str, Any]:
        response = requests.get(self.receiver.url + "/api/v1/incidents/1", headers=ADMIN, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.incident()["timeline"]]

    def slack_calls(self, method: str) -> list[dict[str, Any]]:
        return [r.json() for r in self.slack.requests if r.path == f"/api/{method}"]

    def pager_events(self, action: str) -> list[dict[str, Any]]:
        return [b for b in self.pager.bodies() if b["event_action"] == action]

    def interact(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "UALICE",
        stamp: float | None = None,
        secret: str = SIGNING_SECRET,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        interaction = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower()[1:]},
            "actions": [{"action_id": action_id, "value": value, "type": "button"}],
        }
        raw = body if body is not None else urlencode({"payload": json.dumps(interaction)}).encode()
        ts = str(int(stamp if stamp is not None else time.time()))
        signed = headers or {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": slack_signature(secret, ts, raw),
        }
        return requests.post(
            self.receiver.url + "/slack/interactions",
            data=raw,
            headers={"Content-Type": "application/x-www-form-urlencoded", **signed},
            timeout=10,
        )

    def pd_webhook(
        self, event_type: str, event_id: str, *, signature: str | None = None
    ) -> requests.Response:
        body = json.dumps(
            {
                "event": {
                    "id": event_id,
                    "event_type": event_type,
                    "resource_type": "incident",
                    "occurred_at": "2026-12-02T14:00:00Z",
                    "agent": {"id": "PUSER1", "summary": "Pat Pager", "type": "user_reference"},
                    "data": {"id": "Q1", "type": "incident", "incident_key": INCIDENT_KEY, "status": "x"},
                }
            }
        ).encode()
        sig = signature or f"v1=deadbeef, {pagerduty_signature(PD_SECRET, body)}"
        return requests.post(
            self.receiver.url + "/pagerduty/webhook",
            data=body,
            headers={"Content-Type": "application/json", "X-PagerDuty-Signature": sig},
            timeout=10,
        )

    def button(self, prefix: str) -> dict[str, Any]:
        for call in reversed(self.slack.requests):
            for block in call.json().get("blocks", []):
                for element in block.get("elements", []):
                    if str(element.get("action_id", "")).startswith(prefix):
                        return dict(element)
        raise AssertionError(f"no {prefix} button in any Slack message")


@pytest.fixture
def two_way(tmp_path: Path, recording_server: Any) -> Iterator[TwoWay]:
    slack = recording_server(response_body=b'{"ok": true, "channel": "C0OPS", "ts": "1700000000.000100"}')
    pager = recording_server(status=202, response_body=b'{"status": "success"}')
    hook = recording_server()
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "two-way.yml").write_text(RUNBOOK % {"hook": hook.url})
    files = {
        "bot-token": "xoxb-test-token",
        "signing-secret": SIGNING_SECRET,
        "routing-key": "R0UTE",
        "pd-secret": PD_SECRET,
        "users.yml": "UALICE: responder\nUADMIN: admin\nUVIEWER: viewer\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    settings = make_settings(
        tmp_path / "data",
        runbooks,
        http_allow_list=(hook.url,),
        public_url=CONSOLE,
        pager_url=pager.url + "/v2/enqueue",
        pager_routing_key_file=tmp_path / "routing-key",
        pagerduty_webhook_secret_file=tmp_path / "pd-secret",
        channels={
            "ops": {
                "type": "slack_app",
                "channel": "C0OPS",
                "bot_token_file": str(tmp_path / "bot-token"),
                "signing_secret_file": str(tmp_path / "signing-secret"),
                "users_file": str(tmp_path / "users.yml"),
                "api_url": slack.url + "/api",
            }
        },
    )
    receiver = start_receiver(settings)
    stack = TwoWay(receiver, slack, pager, hook)
    response = requests.post(
        receiver.url + "/api/v1/alerts", json=notification(alert()), headers=HDR, timeout=10
    )
    assert response.status_code == 200
    wait_until(lambda: stack.slack_calls("chat.postMessage"), timeout=20, message="first Slack message")
    yield stack
    receiver.stop()


def test_first_message_then_thread_replies_and_the_first_kept_current(two_way: TwoWay) -> None:
    first = two_way.slack_calls("chat.postMessage")[0]
    assert first["channel"] == "C0OPS" and "thread_ts" not in first
    assert two_way.slack.requests[0].headers["Authorization"] == "Bearer xoxb-test-token"
    labels = [e["text"]["text"] for b in first["blocks"] for e in b.get("elements", []) if "action_id" in e]
    assert labels == ["Acknowledge", "Recover", "Approve call-hook", "Deny call-hook"]
    approve = two_way.button("approve-")
    assert two_way.interact(approve["action_id"], approve["value"]).status_code == 200
    wait_until(lambda: two_way.slack_calls("chat.update"), timeout=20, message="first message updated")
    reply = [c for c in two_way.slack_calls("chat.postMessage") if c.get("thread_ts")]
    assert reply and reply[0]["thread_ts"] == "1700000000.000100" and reply[0]["channel"] == "C0OPS"
    update = two_way.slack_calls("chat.update")[0]
    assert update["ts"] == "1700000000.000100" and "approved" in json.dumps(update)
    # the approval is decided: the kept-current first message no longer offers Approve / Deny
    assert "approve-" not in json.dumps(update) and "Acknowledge" in json.dumps(update)
    assert len([r for r in two_way.hook.requests if r.path == "/contain"]) == 1
    decided = [e for e in two_way.incident()["timeline"] if e["kind"] == "approval_decided"]
    assert len(decided) == 1 and "approved by slack:alice" in decided[0]["message"]


def test_acknowledge_in_slack_once_even_when_delivered_twice_and_paged_ack_sent(two_way: TwoWay) -> None:
    ack = two_way.button("ack")
    raw = urlencode(
        {
            "payload": json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": "UALICE", "username": "alice"},
                    "actions": [{"action_id": ack["action_id"], "value": ack["value"]}],
                }
            )
        }
    ).encode()
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_signature(SIGNING_SECRET, ts, raw)}
    runtime = two_way.receiver.context.response
    assert runtime is not None and runtime.inbound is not None
    runtime.inbound.stop()  # the answer does not wait for the work
    first = two_way.interact("", "", body=raw, headers=headers)
    assert first.status_code == 200 and "acting on it" in first.json()["text"]
    assert two_way.incident()["incident"]["acknowledged_at"] is None
    replay = two_way.interact("", "", body=raw, headers=headers)
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]["message"]
    runtime.inbound.start()
    wait_until(lambda: two_way.incident()["incident"]["acknowledged_by"], timeout=20, message="acked")
    assert two_way.incident()["incident"]["acknowledged_by"] == "slack:alice"
    assert two_way.kinds().count("acknowledged") == 1
    wait_until(lambda: two_way.pager_events("acknowledge"), timeout=20, message="PagerDuty acknowledge")
    ack_event = two_way.pager_events("acknowledge")[0]
    trigger = two_way.pager_events("trigger")[0]
    assert ack_event["dedup_key"] == trigger["dedup_key"] == INCIDENT_KEY
    assert ack_event["links"] == [{"href": f"{CONSOLE}/incidents/1", "text": "Incident 1 in the console"}]
    assert ack_event["client_url"] == f"{CONSOLE}/incidents/1" and ack_event["client"]
    assert ack_event["payload"]["timestamp"] and trigger["payload"]["timestamp"]
    assert len(two_way.pager_events("acknowledge")) == 1


def test_bad_signature_stale_timestamp_and_viewer_are_refused(two_way: TwoWay) -> None:
    ack = two_way.button("ack")
    assert two_way.interact(ack["action_id"], ack["value"], secret="wrong-secret").status_code == 401
    stale = two_way.interact(ack["action_id"], ack["value"], stamp=time.time() - 301)
    assert stale.status_code == 401 and "stale" in stale.json()["error"]["message"]
    unsigned = two_way.interact(ack["action_id"], ack["value"], headers={"X-Other": "1"})
    assert unsigned.status_code == 401
    viewer = two_way.interact(ack["action_id"], ack["value"], user="UVIEWER")
    assert viewer.status_code == 200 and "Not allowed" in viewer.json()["text"]
    stranger = two_way.interact(ack["action_id"], ack["value"], user="USTRANGER")
    assert "Not allowed" in stranger.json()["text"]
    link = two_way.interact("Aq9z", "")  # a link button (Incident, Dashboard): acknowledged, nothing done
    assert link.status_code == 200 and link.json() == {"ok": True}
    forged = two_way.interact("approve-1", '{"incident": "1"}')  # no approval named
    assert forged.status_code == 400
    time.sleep(1.5)  # give a (wrongly) recorded request time to be acted on
    assert two_way.incident()["incident"]["acknowledged_at"] is None


def test_deny_from_slack_skips_the_gated_step(two_way: TwoWay) -> None:
    deny = two_way.button("deny-")
    assert two_way.interact(deny["action_id"], deny["value"], user="UADMIN").status_code == 200
    wait_until(lambda: "approval_decided" in two_way.kinds(), timeout=20, message="denied")
    approvals = two_way.receiver.context.store.approvals.for_incident(1)
    assert approvals[0].state == "denied" and approvals[0].decided_by == "slack:admin"
    assert not [r for r in two_way.hook.requests if r.path == "/contain"]


def test_pagerduty_acknowledged_webhook_acks_here_once(two_way: TwoWay) -> None:
    first = two_way.pd_webhook("incident.acknowledged", "EVT1")
    again = two_way.pd_webhook("incident.acknowledged", "EVT1")
    assert first.status_code == 200 and first.json() == {"accepted": True, "duplicate": False}
    assert again.status_code == 200 and again.json()["duplicate"] is True
    wait_until(lambda: two_way.incident()["incident"]["acknowledged_by"], timeout=20, message="acked")
    assert two_way.incident()["incident"]["acknowledged_by"] == "pagerduty:Pat Pager"
    assert two_way.kinds().count("acknowledged") == 1
    time.sleep(0.5)
    assert two_way.pager_events("acknowledge") == []  # PagerDuty told us: nothing echoed back


def test_pagerduty_resolved_webhook_resolves_here(two_way: TwoWay) -> None:
    assert two_way.pd_webhook("incident.resolved", "EVT2").status_code == 200
    assert two_way.pd_webhook("incident.resolved", "EVT2").json()["duplicate"] is True
    wait_until(lambda: two_way.incident()["incident"]["state"] == "resolved", timeout=20, message="resolved")
    assert [e for e in two_way.incident()["timeline"] if "resolved by pagerduty:Pat Pager" in e["message"]]
    assert two_way.pager_events("resolve") == []


def test_pagerduty_bad_signature_is_401_and_nothing_happens(two_way: TwoWay) -> None:
    bad = two_way.pd_webhook("incident.acknowledged", "EVT3", signature="v1=" + "0" * 64)
    assert bad.status_code == 401
    missing = requests.post(two_way.receiver.url + "/pagerduty/webhook", json={"event": {}}, timeout=10)
    assert missing.status_code == 401
    ignored = two_way.pd_webhook("incident.priority_updated", "EVT4")
    assert ignored.status_code == 200 and ignored.json()["accepted"] is False
    time.sleep(0.5)
    assert two_way.incident()["incident"]["acknowledged_at"] is None


def test_resolved_here_sends_the_pagerduty_resolve_with_links(two_way: TwoWay) -> None:
    response = requests.post(
        two_way.receiver.url + "/api/v1/incidents/1/resolve",
        json={"actor": "carol"},
        headers=ADMIN,
        timeout=30,
    )
    assert response.status_code == 200
    wait_until(lambda: two_way.pager_events("resolve"), timeout=20, message="PagerDuty resolve")
    resolve = two_way.pager_events("resolve")[0]
    assert resolve["dedup_key"] == INCIDENT_KEY and resolve["client_url"] == f"{CONSOLE}/incidents/1"
    assert resolve["links"][0]["href"] == f"{CONSOLE}/incidents/1" and resolve["payload"]["timestamp"]


def test_recover_from_slack_runs_recovery_as_the_slack_user(two_way: TwoWay) -> None:
    recover = two_way.button("recover")
    assert two_way.interact(recover["action_id"], recover["value"]).status_code == 200
    wait_until(lambda: "recovery_requested" in two_way.kinds(), timeout=20, message="recovery requested")
    requested = [e for e in two_way.incident()["timeline"] if e["kind"] == "recovery_requested"]
    assert len(requested) == 1 and requested[0]["data"]["actor"] == "slack:alice"
