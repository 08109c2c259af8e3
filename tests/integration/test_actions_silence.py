"""``silence`` against a real Alertmanager 0.25 (v2 API): templated matchers on create, expired on recover."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import requests

from receiver.actions.base import ActionSettings
from receiver.actions.executor import StepSpec
from tests.support.action_fixtures import make_context, make_executor
from tests.support.realparts import free_port

AM_CONFIG = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}


@pytest.fixture
def alertmanager(alertmanager_factory):
    return alertmanager_factory(AM_CONFIG)


def silence_step(**extra: object) -> StepSpec:
    raw = {
        "action": "silence",
        "matchers": ['model="{{ labels.model }}"', 'incident_type=~"drift|auc_drop"'],
        "duration": "30m",
        "comment": "drift contained, see runbook",
        **extra,
    }
    return StepSpec.from_mapping(raw, 0)


def test_silence_is_created_time_boxed_and_expired_on_recovery(tmp_path: Path, alertmanager):
    settings = ActionSettings(alertmanager_url=alertmanager.url, cooldown_seconds=0)
    executor = make_executor(tmp_path / "ledger.db", settings, clock=lambda: datetime.now().timestamp())
    weird = 'fraud"} , x="y {{ 7 * 7 }}'
    ctx = make_context(settings, incident_id="INC-42", labels={"model": weird, "incident_type": "drift"})
    outcome = executor.run_step(silence_step(), ctx)
    assert outcome.state == "succeeded", outcome
    silence_id = outcome.data["silence_id"]
    got = requests.get(f"{alertmanager.url}/api/v2/silence/{silence_id}", timeout=5).json()
    assert got["status"]["state"] == "active"
    assert got["createdBy"] == "receiver" and "incident INC-42" in got["comment"]
    matchers = {m["name"]: m for m in got["matchers"]}
    assert set(matchers) == {"model", "incident_type"}  # the label value could not add a matcher
    assert matchers["model"]["value"] == weird and not matchers["model"]["isRegex"]
    assert matchers["incident_type"]["isRegex"] and matchers["incident_type"]["value"] == "drift|auc_drop"
    starts = datetime.fromisoformat(got["startsAt"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(got["endsAt"].replace("Z", "+00:00"))
    assert abs((ends - starts).total_seconds() - 1800) < 5

    recovered = executor.recover(ctx)
    assert [o.state for o in recovered] == ["succeeded"], recovered
    got = requests.get(f"{alertmanager.url}/api/v2/silence/{silence_id}", timeout=5).json()
    assert got["status"]["state"] == "expired"


def test_a_silence_longer_than_the_maximum_is_refused_before_calling(tmp_path: Path, alertmanager):
    settings = ActionSettings(alertmanager_url=alertmanager.url, silence_max_seconds=3600)
    executor = make_executor(tmp_path / "ledger.db", settings)
    outcome = executor.run_step(silence_step(duration="2h"), make_context(settings))
    assert outcome.state == "failed" and "exceeds the maximum" in (outcome.error or "")
    assert outcome.attempts == 1  # a parameter error is not retried
    assert requests.get(f"{alertmanager.url}/api/v2/silences", timeout=5).json() == []


def test_bad_matcher_is_named(tmp_path: Path):
    settings = ActionSettings(alertmanager_url="http://127.0.0.1:1")
    executor = make_executor(tmp_path / "ledger.db", settings)
    outcome = executor.run_step(
        StepSpec.from_mapping({"action": "silence", "matchers": ["model fraud"], "duration": "1h"}, 0),
        make_context(settings),
    )
    assert outcome.state == "failed" and "'model fraud'" in (outcome.error or "")


def test_unreachable_alertmanager_is_retried_then_failed(tmp_path: Path):
    settings = ActionSettings(alertmanager_url=f"http://127.0.0.1:{free_port()}", default_timeout=2)
    executor = make_executor(tmp_path / "ledger.db", settings)
    outcome = executor.run_step(silence_step(retries=2), make_context(settings))
    assert outcome.state == "failed" and outcome.attempts == 3
    assert "ConnectionError" in (outcome.error or "")
    assert [e["event"] for e in outcome.timeline].count("attempt_failed") == 2
