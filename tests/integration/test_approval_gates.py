"""Approval gates end to end: a real receiver app on waitress, its SQLite store, and a real local HTTP
server standing in for the system the gated step calls (an ``http`` step, so every run of the step is a
recorded request). Nothing is mocked.

Covered: approve, deny, timeout with ``proceed`` and with ``skip``, many decisions at once (one wins), a
restart while waiting (a new app on the same store: deciding there, and the timeout firing there), the CLI,
and the dry run showing the gate without asking.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from receiver.cli import main
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

RUNBOOK = """
id: gated
title: Gated containment (test)
match: ['incident_type="drift"']
group_by: [model]
dry_run: %(dry_run)s
severity:
  - {when: 'value is not none and value >= 0.5', level: SEV2}
  - {level: SEV3}
contain:
  - id: call-hook
    action: http
    url: '%(hook)s/contain'
    body: {model: '{{ labels.model }}'}
    approve: {when: 'level == "SEV3"', timeout: %(timeout)s, on_timeout: %(on_timeout)s, role: responder}
"""

HDR = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Gate:
    receiver: RunningReceiver
    hook: RecordingServer
    settings: Any

    def post_alert(self, value: str = "0.3", **labels: str) -> None:
        response = requests.post(
            self.receiver.url + "/api/v1/alerts",
            json=notification(alert(value=value, **labels)),
            headers=HDR,
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def approvals(self, incident_id: int = 1) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.receiver.url}/api/v1/incidents/{incident_id}/approvals", headers=ADMIN, timeout=10
        )
        response.raise_for_status()
        return list(response.json()["approvals"])

    def decide(self, approval_id: int, decision: str, actor: str, reason: str = "") -> requests.Response:
        return requests.post(
            f"{self.receiver.url}/api/v1/incidents/1/approvals/{approval_id}",
            json={"decision": decision, "actor": actor, "reason": reason},
            headers=ADMIN,
            timeout=30,
        )

    def timeline(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.receiver.url}/api/v1/incidents/1", headers=ADMIN, timeout=10)
        response.raise_for_status()
        return list(response.json()["timeline"])

    def wait_pending(self) -> dict[str, Any]:
        wait_until(lambda: self.approvals(), timeout=20, message="approval requested")
        return self.approvals()[0]

    def hook_calls(self) -> int:
        return len([r for r in self.hook.requests if r.path == "/contain"])

    def ledger_states(self) -> list[str]:
        return [r.state for r in self.receiver.context.store.ledger.rows("1")]


@pytest.fixture
def gate_factory(tmp_path: Path, recording_server: Any) -> Iterator[Any]:
    started: list[RunningReceiver] = []
    hook = recording_server()

    def factory(
        *,
        timeout: str = "1h",
        on_timeout: str = "skip",
        dry_run: bool = False,
        restart_of: Gate | None = None,
    ) -> Gate:
        if restart_of is not None:
            receiver = start_receiver(restart_of.settings)
            started.append(receiver)
            return Gate(receiver, hook, restart_of.settings)
        runbooks = tmp_path / "runbooks"
        runbooks.mkdir()
        (runbooks / "gated.yml").write_text(
            RUNBOOK
            % {
                "hook": hook.url,
                "timeout": timeout,
                "on_timeout": on_timeout,
                "dry_run": "true" if dry_run else "false",
            }
        )
        settings = make_settings(tmp_path / "data", runbooks, http_allow_list=(hook.url,))
        receiver = start_receiver(settings)
        started.append(receiver)
        return Gate(receiver, hook, settings)

    yield factory
    for receiver in started:
        with contextlib.suppress(Exception):  # a restart test stopped the first app already
            receiver.stop()


def test_approve_runs_the_step_once_and_records_who_when_why(gate_factory: Any) -> None:
    gate = gate_factory()
    gate.post_alert()
    pending = gate.wait_pending()
    assert (
        pending["state"] == "pending" and pending["step_id"] == "call-hook" and pending["role"] == "responder"
    )
    assert "http of churn" in pending["summary"]
    assert gate.hook_calls() == 0 and gate.ledger_states() == []  # held: not run, not even claimed
    kinds = [e["kind"] for e in gate.timeline()]
    assert "approval_requested" in kinds

    response = gate.decide(pending["id"], "approve", "alice", "PSI confirmed on the dashboard")
    assert response.status_code == 200 and response.json()["won"] is True
    assert gate.hook_calls() == 1 and gate.hook.requests[0].json() == {"model": "churn"}
    assert gate.ledger_states() == ["succeeded"]
    decided = [e for e in gate.timeline() if e["kind"] == "approval_decided"]
    assert len(decided) == 1 and "approved by alice (PSI confirmed on the dashboard)" in decided[0]["message"]
    assert decided[0]["data"]["decided_by"] == "alice" and decided[0]["data"]["decided_at"]

    late = gate.decide(pending["id"], "deny", "bob")
    assert late.status_code == 409 and "already approved by alice" in late.json()["error"]["message"]
    gate.post_alert()  # the same notification again: the approved step never runs twice
    wait_until(lambda: gate.receiver.context.store.pending_count() == 0, timeout=10, message="drained")
    assert gate.hook_calls() == 1 and gate.approvals()[0]["state"] == "approved"


def test_deny_skips_the_step(gate_factory: Any) -> None:
    gate = gate_factory()
    gate.post_alert()
    pending = gate.wait_pending()
    assert gate.decide(pending["id"], "deny", "bob", "not this model").json()["won"] is True
    assert gate.hook_calls() == 0 and gate.ledger_states() == []
    skipped = [e for e in gate.timeline() if e["kind"] == "action" and "denied by bob" in e["message"]]
    assert len(skipped) == 1 and "not this model" in skipped[0]["message"]
    assert gate.approvals()[0]["state"] == "denied"
    # the severity rises (the gate's condition, level == "SEV3", no longer holds): the denial still stands
    before = len(gate.timeline())
    gate.post_alert(value="0.7", feature="f2")  # a second alert of the same incident
    wait_until(
        lambda: gate.receiver.context.store.get_incident(1).incident.severity == "SEV2",
        timeout=20,
        message="severity raised",
    )
    wait_until(lambda: gate.receiver.context.store.pending_count() == 0, timeout=10, message="drained")
    assert gate.hook_calls() == 0 and gate.ledger_states() == []
    assert not [e for e in gate.timeline()[before:] if e["kind"] == "action"]


def test_timeout_with_proceed_runs_the_step_once(gate_factory: Any) -> None:
    gate = gate_factory(timeout="1s", on_timeout="proceed")
    gate.post_alert()
    gate.wait_pending()
    wait_until(lambda: gate.hook_calls() == 1, timeout=20, message="step run after the timeout")
    approval = gate.approvals()[0]
    assert approval["state"] == "expired" and approval["decided_by"] == "timeout"
    assert "approval_expired" in [e["kind"] for e in gate.timeline()]
    assert gate.decide(approval["id"], "deny", "late").status_code == 409
    assert gate.hook_calls() == 1 and gate.ledger_states() == ["succeeded"]


def test_timeout_with_skip_skips_the_step(gate_factory: Any) -> None:
    gate = gate_factory(timeout="1s", on_timeout="skip")
    gate.post_alert()
    gate.wait_pending()
    wait_until(lambda: gate.approvals()[0]["state"] == "expired", timeout=20, message="expired")
    wait_until(
        lambda: any("no decision before the approval timeout" in e["message"] for e in gate.timeline()),
        timeout=10,
        message="skip recorded",
    )
    assert gate.hook_calls() == 0 and gate.ledger_states() == []


def test_many_decisions_at_once_one_wins_and_the_step_runs_at_most_once(gate_factory: Any) -> None:
    gate = gate_factory()
    gate.post_alert()
    pending = gate.wait_pending()
    barrier = threading.Barrier(8)
    statuses: list[tuple[str, int]] = []
    lock = threading.Lock()

    def decide(n: int) -> None:
        decision = "approve" if n % 2 else "deny"
        barrier.wait()
        response = gate.decide(pending["id"], decision, f"user{n}")
        with lock:
            statuses.append((decision, response.status_code))

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [d for d, status in statuses if status == 200]
    assert len(winners) == 1 and sorted(s for _, s in statuses) == [200] + [409] * 7
    assert gate.hook_calls() == (1 if winners[0] == "approve" else 0)
    decided = [e for e in gate.timeline() if e["kind"] == "approval_decided"]
    assert len(decided) == 1


def test_restart_while_waiting_then_approve_on_the_new_app(gate_factory: Any) -> None:
    first = gate_factory()
    first.post_alert()
    pending = first.wait_pending()
    first.receiver.stop()
    second = gate_factory(restart_of=first)
    assert second.approvals()[0]["state"] == "pending"
    assert second.decide(pending["id"], "approve", "carol").json()["won"] is True
    assert second.hook_calls() == 1 and second.ledger_states() == ["succeeded"]


def test_restart_while_waiting_the_timeout_fires_on_the_new_app(gate_factory: Any) -> None:
    first = gate_factory(timeout="2s", on_timeout="proceed")
    first.post_alert()
    first.wait_pending()
    first.receiver.stop()
    second = gate_factory(restart_of=first)
    wait_until(lambda: second.hook_calls() == 1, timeout=20, message="proceed after restart")
    assert second.approvals()[0]["state"] == "expired" and second.ledger_states() == ["succeeded"]


def test_cli_approve_by_step(gate_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = gate_factory()
    gate.post_alert()
    gate.wait_pending()
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN)
    common = ["--url", gate.receiver.url, "--admin-token-file", str(token_file)]
    assert main(["incident", "approve", "1", "call-hook", "--actor", "dave", "--note", "ok", *common]) == 0
    assert '"won": true' in capsys.readouterr().out
    assert gate.hook_calls() == 1
    with pytest.raises(SystemExit) as refused:
        main(["incident", "deny", "1", "call-hook", "--actor", "erin", *common])
    assert "409" in str(refused.value) and "already approved by dave" in str(refused.value)
    with pytest.raises(SystemExit) as missing:
        main(["incident", "approve", "1", *common])
    assert "needs the gated step" in str(missing.value)


def test_dry_run_shows_the_gate_without_asking(gate_factory: Any) -> None:
    gate = gate_factory(dry_run=True)
    gate.post_alert()
    wait_until(
        lambda: any("would ask for responder approval" in e["message"] for e in gate.timeline()),
        timeout=20,
        message="dry-run gate on the timeline",
    )
    assert gate.approvals() == [] and gate.hook_calls() == 0


def test_no_gate_when_its_condition_is_false(gate_factory: Any) -> None:
    gate = gate_factory()
    gate.post_alert(value="0.7")  # SEV2: the gate's when (level == "SEV3") is false, the step runs at once
    wait_until(lambda: gate.hook_calls() == 1, timeout=20, message="ungated step")
    assert gate.approvals() == []


def test_the_sweep_expires_a_gate_whose_timer_was_lost(gate_factory: Any) -> None:
    gate = gate_factory(timeout="3s", on_timeout="proceed")
    gate.post_alert()
    gate.wait_pending()
    assert gate.receiver.context.store.timers.cancel(1, ("approval",)) == 1  # before it could fire
    wait_until(lambda: gate.hook_calls() == 1, timeout=30, message="proceed from the sweep")
    assert gate.approvals()[0]["state"] == "expired" and gate.ledger_states() == ["succeeded"]
