"""The responder end to end: a real receiver app on waitress, the real SQLite registry, a real Prometheus
scraping a small exporter whose PSI the test sets, and a real HTTP chat sink.

Flow under test: notification → incident → evidence → traffic split (exactly once) → "opened" message →
verification against Prometheus → contained + "contained" message; escalation when nobody acknowledges;
acknowledgement stops it; recovery; resolve; review. Nothing is mocked.

Runs on the first selected Prometheus/Alertmanager pair only: what the responder asks of Prometheus (instant
queries, the verification condition) is pinned on every pair by test_prom_client.py and
test_prom_verification.py, and nothing here depends on the pair otherwise (about 90 s per pair saved).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from model_registry import open_registry
from tests.support.payloads import alert, notification
from tests.support.realparts import RecordingServer, free_port, wait_until
from tests.support.receiver_server import (
    ADMIN_TOKEN,
    WEBHOOK_TOKEN,
    RunningReceiver,
    make_settings,
    start_receiver,
)

pytestmark = pytest.mark.pairs("first")

RUNBOOK = """
id: drift-test
title: Feature drift (test)
match: ['incident_type="drift"']
group_by: [model]
owners: {incident_commander: ml-oncall, ml_owner: '{{ labels.team or "ml-models" }}'}
impact: 'Predictions of {{ labels.model }} may be off.'
severity:
  - {when: 'value is not none and value >= 0.2', level: SEV2}
  - {level: SEV3}
contain:
  - {id: split, action: traffic_split, to: last_known_good, weight: 50, when: 'level in ["SEV1", "SEV2"]'}
recover:
  - {id: traffic-back, action: traffic_split}
evidence:
  - {name: max PSI, query: 'max(model_feature_psi{model="{{ labels.model }}"})'}
verify: {query: 'max(model_feature_psi{model="{{ labels.model }}"}) < 0.2', for: 2s, timeout: %(timeout)s}
escalate: {after: %(escalate_after)s, to: ml-senior, upgrade_to: SEV1}
comms: {channels: [chat], cadence: %(cadence)s}
"""

HDR = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Stack:
    receiver: RunningReceiver
    chat: RecordingServer
    psi: Gauge
    registry_db: Path

    def post(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.receiver.url + "/api/v1/alerts", json=body, headers=HDR, timeout=10)

    def incident(self, incident_id: int = 1) -> dict[str, Any]:
        response = requests.get(
            f"{self.receiver.url}/api/v1/incidents/{incident_id}", headers=ADMIN, timeout=10
        )
        response.raise_for_status()
        return dict(response.json())

    def kinds(self, incident_id: int = 1) -> list[str]:
        return [entry["kind"] for entry in self.incident(incident_id)["timeline"]]

    def chat_events(self) -> list[str]:
        return [body["update"]["event"] for body in self.chat.bodies()]


def _exporter() -> tuple[Gauge, int]:
    registry = CollectorRegistry()
    gauge = Gauge("model_feature_psi", "PSI", ["model", "version", "feature"], registry=registry)
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=registry)
    return gauge, port


def _registry(path: Path) -> None:
    reg = open_registry(str(path))
    for version in ("v1", "v2"):
        reg.register(
            "churn",
            version,
            artifact_path=f"/models/{version}",
            baseline=None,
            metadata={},
            actor="test",
            reason="setup",
            healthy=version == "v1",
        )
    reg.promote("churn", "v1", actor="test", reason="setup")
    reg.promote("churn", "v2", actor="test", reason="release")


@pytest.fixture
def stack_factory(tmp_path: Path, prometheus_factory: Any, recording_server: Any) -> Iterator[Any]:
    started: list[RunningReceiver] = []

    def factory(
        *, escalate_after: str = "1h", timeout: str = "30s", psi: float = 0.3, cadence: str = "1h"
    ) -> Stack:
        gauge, port = _exporter()
        gauge.labels("churn", "v2", "f1").set(psi)
        prom = prometheus_factory(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "model", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                ],
            }
        )
        wait_until(
            lambda: requests.get(
                prom.url + "/api/v1/query", params={"query": "model_feature_psi"}, timeout=2
            ).json()["data"]["result"],
            timeout=15,
            message="first scrape",
        )
        runbooks = tmp_path / "runbooks"
        runbooks.mkdir(exist_ok=True)
        (runbooks / "drift.yml").write_text(
            RUNBOOK % {"timeout": timeout, "escalate_after": escalate_after, "cadence": cadence}
        )
        registry_db = tmp_path / "registry.db"
        _registry(registry_db)
        chat = recording_server()
        url_file = tmp_path / "chat-url"
        url_file.write_text(chat.url + "/hook\n")
        settings = make_settings(
            tmp_path / "data",
            runbooks,
            registry_db=registry_db,
            prometheus_url=prom.url,
            channels={"chat": {"type": "webhook", "url_file": str(url_file)}},
            verify_interval=0.5,
        )
        receiver = start_receiver(settings)
        started.append(receiver)
        return Stack(receiver, chat, gauge, registry_db)

    yield factory
    for receiver in started:
        receiver.stop()


def _splits(registry_db: Path) -> list[Any]:
    return [e for e in open_registry(str(registry_db)).history("churn") if e.action.startswith("split")]


def test_drift_is_split_verified_and_contained_exactly_once(stack_factory: Any) -> None:
    stack = stack_factory()
    body = notification(alert(value="0.3", team="{{ 7*7 }}"))
    threads = [threading.Thread(target=stack.post, args=(body,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stack.post(body).status_code == 200

    wait_until(lambda: "opened" in stack.chat_events(), timeout=20, message="opened message")
    state = open_registry(str(stack.registry_db)).state("churn")
    assert state.traffic == {"v1": 50.0, "v2": 50.0}
    kinds = stack.kinds()
    assert "evidence" in kinds and "verification_started" in kinds
    evidence = next(e for e in stack.incident()["timeline"] if e["kind"] == "evidence")
    assert "max PSI: 0.3" in evidence["message"]

    opened = stack.chat.bodies()[0]
    # label values are data: the owner template received "{{ 7*7 }}" literally, never evaluated
    assert "{{ 7*7 }}" in json.dumps(opened) and "49" not in json.dumps(opened["update"]["owners"])
    assert opened["update"]["severity"] == "SEV2"

    stack.psi.labels("churn", "v2", "f1").set(0.05)  # containment worked: PSI falls under 0.2
    wait_until(lambda: stack.incident()["incident"]["state"] == "contained", timeout=30, message="contained")
    wait_until(lambda: "contained" in stack.chat_events(), timeout=10, message="contained message")

    # the same notification after all that, and again: nothing new happens
    assert stack.post(body).status_code == 200
    wait_until(lambda: stack.receiver.context.store.pending_count() == 0, timeout=10, message="drained")
    assert len(_splits(stack.registry_db)) == 1
    metrics = requests.get(stack.receiver.url + "/metrics", timeout=10).text
    assert 'receiver_actions_total{kind="traffic_split",replica="r1",result="succeeded"} 1.0' in metrics
    events = stack.chat_events()
    assert events.count("opened") == 1 and events.count("contained") == 1


def test_unacknowledged_incident_escalates_and_ack_prevents_it(stack_factory: Any) -> None:
    stack = stack_factory(escalate_after="2s", timeout="1h", psi=0.3)
    assert stack.post(notification(alert(value="0.3"))).status_code == 200
    wait_until(lambda: "escalated" in stack.kinds(), timeout=20, message="escalation")
    wait_until(lambda: "escalated" in stack.chat_events(), timeout=10, message="escalated message")
    escalated = next(e for e in stack.incident()["timeline"] if e["kind"] == "escalated")
    assert "not acknowledged within 2s" in escalated["message"]
    assert stack.incident()["incident"]["severity"] == "SEV1"  # escalate.upgrade_to, never lowered after

    # a second model's incident, acknowledged at once, does not escalate
    other = alert(value="0.3", model="fraud")
    assert stack.post(notification(other, group_key='{}:{model="fraud"}')).status_code == 200
    wait_until(
        lambda: requests.get(stack.receiver.url + "/api/v1/incidents/2", headers=ADMIN, timeout=5).ok,
        timeout=10,
        message="second incident",
    )
    ack = requests.post(
        stack.receiver.url + "/api/v1/incidents/2/ack", json={"actor": "alice"}, headers=ADMIN, timeout=10
    )
    assert ack.status_code == 200 and ack.json()["changed"] is True
    wait_until(
        lambda: "opened" in [e["kind"] for e in stack.incident(2)["timeline"]],
        timeout=5,
        message="second incident timeline",
    )
    import time

    time.sleep(3.5)
    kinds = stack.kinds(2)
    assert "acknowledged" in kinds and "escalated" not in kinds


def test_verification_timeout_escalates(stack_factory: Any) -> None:
    stack = stack_factory(timeout="3s", psi=0.4)
    assert stack.post(notification(alert(value="0.4"))).status_code == 200
    wait_until(lambda: "verification_failed" in stack.kinds(), timeout=25, message="verification failure")
    failed = next(e for e in stack.incident()["timeline"] if e["kind"] == "verification_failed")
    assert "failed" in failed["message"]
    assert "escalated" in stack.kinds()
    assert stack.incident()["incident"]["state"] == "open"


def test_recover_resolve_and_review(stack_factory: Any) -> None:
    stack = stack_factory(psi=0.3)
    firing = alert(value="0.3")
    assert stack.post(notification(firing)).status_code == 200
    wait_until(lambda: "opened" in stack.chat_events(), timeout=20, message="opened message")

    recovered = requests.post(
        stack.receiver.url + "/api/v1/incidents/1/recover", json={"actor": "bob"}, headers=ADMIN, timeout=30
    )
    assert recovered.status_code == 200, recovered.text
    assert [s["state"] for s in recovered.json()["steps"]] == ["succeeded"]
    assert open_registry(str(stack.registry_db)).state("churn").traffic == {"v2": 100.0}

    resolved = dict(firing, status="resolved", endsAt="2024-05-01T11:00:00Z")
    assert stack.post(notification(resolved)).status_code == 200
    wait_until(lambda: stack.incident()["incident"]["state"] == "resolved", timeout=10, message="resolved")
    wait_until(lambda: "resolved" in stack.chat_events(), timeout=10, message="resolved message")

    review = requests.get(stack.receiver.url + "/api/v1/incidents/1/review", headers=ADMIN, timeout=10)
    assert review.status_code == 200
    text = review.text
    assert "# Post-incident review: incident 1" in text
    assert "traffic_split" in text and "traffic-back" in text
    assert "max PSI" in text and "## Root cause" in text and "## Action items" in text
    opened_at = stack.incident()["incident"]["opened_at"]
    assert opened_at in text
    assert "opened update queued for chat" in text and "resolved update queued for chat" in text


def test_admin_api_requires_the_admin_token(stack_factory: Any) -> None:
    stack = stack_factory()
    response = requests.post(stack.receiver.url + "/api/v1/incidents/1/ack", headers=HDR, timeout=10)
    assert response.status_code == 401
    missing = requests.post(stack.receiver.url + "/api/v1/incidents/99/ack", headers=ADMIN, timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


def test_runbook_pages_resolve_ids_and_incident_types(stack_factory: Any) -> None:
    stack = stack_factory()
    listing = requests.get(stack.receiver.url + "/runbooks", timeout=10).json()
    assert [rb["id"] for rb in listing["runbooks"]] == ["drift-test"]
    by_id = requests.get(stack.receiver.url + "/runbooks/drift-test", timeout=10)
    by_type = requests.get(stack.receiver.url + "/runbooks/drift", timeout=10)
    assert by_id.status_code == by_type.status_code == 200
    assert by_id.text == by_type.text and "id: drift-test" in by_id.text
    assert requests.get(stack.receiver.url + "/runbooks/latency", timeout=10).status_code == 404


def test_updates_repeat_on_the_cadence(stack_factory: Any) -> None:
    stack = stack_factory(cadence="1s", timeout="1h")
    assert stack.post(notification(alert(value="0.3"))).status_code == 200
    wait_until(lambda: stack.chat_events().count("update") >= 2, timeout=20, message="two cadence updates")
    sequences = [b["update"]["sequence"] for b in stack.chat.bodies() if b["update"]["event"] == "update"]
    assert sequences[:2] == [1, 2]
    assert stack.chat.bodies()[0]["update"]["next_update_at"]  # every message says when the next one comes


def test_restart_repeats_nothing(stack_factory: Any, tmp_path: Path) -> None:
    stack = stack_factory()
    body = notification(alert(value="0.3"))
    assert stack.post(body).status_code == 200
    wait_until(lambda: "opened" in stack.chat_events(), timeout=20, message="opened message")
    settings = stack.receiver.context.settings
    stack.receiver.stop()
    again = start_receiver(settings)
    try:
        assert (
            requests.post(again.url + "/api/v1/alerts", json=body, headers=HDR, timeout=10).status_code == 200
        )
        wait_until(lambda: again.context.store.pending_count() == 0, timeout=10, message="drained")
        import time

        time.sleep(1.5)  # let the outbox worker run: nothing new may be sent
        assert len(_splits(stack.registry_db)) == 1
        assert stack.chat_events().count("opened") == 1
    finally:
        again.stop()


def test_incident_and_review_commands(stack_factory: Any, tmp_path: Path, capsys: Any) -> None:
    from receiver.cli import main

    stack = stack_factory()
    assert stack.post(notification(alert(value="0.3"))).status_code == 200
    wait_until(lambda: "opened" in stack.chat_events(), timeout=20, message="opened message")
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    common = ["--url", stack.receiver.url, "--admin-token-file", str(token_file)]
    assert main(["incident", "ack", "1", "--actor", "carol", "--note", "looking", *common]) == 0
    assert "acknowledged" in stack.kinds()
    assert main(["incident", "resolve", "1", "--actor", "carol", *common]) == 0
    assert stack.incident()["incident"]["state"] == "resolved"
    capsys.readouterr()
    assert main(["review", "1", "--data-dir", str(stack.receiver.context.settings.data_dir)]) == 0
    review = capsys.readouterr().out
    assert "acknowledged by carol: looking" in review and "resolved by carol" in review
    with pytest.raises(SystemExit, match=r"401|admin token"):
        main(
            [
                "incident",
                "ack",
                "1",
                "--url",
                stack.receiver.url,
                "--admin-token-file",
                str(tmp_path / "none"),
            ]
        )


def test_verification_continues_after_the_alert_resolves(stack_factory: Any) -> None:
    stack = stack_factory(psi=0.3)
    firing = alert(value="0.3")
    assert stack.post(notification(firing)).status_code == 200
    wait_until(lambda: "verification_started" in stack.kinds(), timeout=20, message="verification started")
    resolved = dict(firing, status="resolved", endsAt="2024-05-01T11:00:00Z")
    assert stack.post(notification(resolved)).status_code == 200
    wait_until(lambda: stack.incident()["incident"]["state"] == "resolved", timeout=10, message="resolved")
    stack.psi.labels("churn", "v2", "f1").set(0.05)
    wait_until(lambda: "contained" in stack.kinds(), timeout=30, message="verified after resolution")
    entry = next(e for e in stack.incident()["timeline"] if e["kind"] == "contained")
    assert entry["message"].startswith("verified after resolution")
    assert stack.incident()["incident"]["state"] == "resolved"  # never reopened or moved backwards
