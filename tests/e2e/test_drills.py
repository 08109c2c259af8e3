"""Every drill scenario through the native drill: real Prometheus, Alertmanager, receiver, registry, model
servers, traffic and a chat/pager sink, with the time-compressed rules. Nothing is mocked.

All scenarios run together on one stack (one model and model server each), so the set costs about as
much as its slowest scenario (~3 minutes on 2 cores); the dry run adds about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from receiver.drill.floors import SIGNAL_HOP
from receiver.drill.run import HOPS, DrillReport, ScenarioResult, run_drill
from receiver.drill.scenarios import SCENARIOS, get_scenario
from tests.support.realparts import PartsVersions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def report(real_parts: PartsVersions) -> Iterator[DrillReport]:  # once per Alertmanager/Prometheus pair
    yield run_drill(list(SCENARIOS))


def _result(report: DrillReport, name: str) -> ScenarioResult:
    return next(r for r in report.results if r.scenario == name)


def test_stack_started_clean(report: DrillReport) -> None:
    assert report.problems == []
    assert report.dropped_settings == [], "the receiver must know every setting the drill configures"


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_contained(report: DrillReport, name: str) -> None:
    scenario = get_scenario(name)
    result = _result(report, name)
    assert result.contained, result.reason
    assert result.incident is not None and result.incident["runbook_id"] in scenario.runbooks
    if scenario.expect.verified:
        assert result.verified, result.reason
        assert result.incident["state"] in ("contained", "resolved")
        assert any(e["kind"] == "contained" for e in result.timeline)
    # the hops happened in order, each no sooner than the configured floor allows (1 s polling slack)
    reached = [(h, result.elapsed(h)) for h in HOPS if result.elapsed(h) is not None]
    assert reached, "no hop was measured"
    firing = result.elapsed("rule firing")
    # the signal (Prometheus activeAt of one of the scenario's alerts) precedes the firing by its for:
    signal = result.elapsed(SIGNAL_HOP)
    assert result.signal_alert in scenario.alerts and signal is not None and firing is not None
    assert signal <= firing
    if scenario.incident_type != "availability":
        assert result.floors["rule firing"] is not None
        assert firing >= result.floors["rule firing"] - 1.0
        applied = result.elapsed("containment applied")
        assert applied is not None and applied >= firing - 1.0
    serving = result.elapsed("serving contained")
    if scenario.expect.server is not None:
        assert serving is not None


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_messages_posted(report: DrillReport, name: str) -> None:
    result = _result(report, name)
    chat = [m for m in result.messages if m["path"].startswith("/chat/")]
    assert chat, "no status message reached the chat sink"
    assert all(result.model in m["text"] for m in chat)
    # links in the messages lead somewhere on this stack: the runbook page and the alert's source
    oncall = [m["text"] for m in chat if "Runbook: " in m["text"]]
    assert oncall and all("Runbook: http://127.0.0.1:" in t for t in oncall)
    assert all("Alert source: http://127.0.0.1:" in t for t in oncall if "Alert source: " in t)
    assert any(m["channel"] == "ml-incidents" for m in chat)
    if name in ("latency-spike", "toxicity", "server-down"):
        assert any(m["path"] == "/pager" for m in result.messages), "expected a page"


def test_registry_state_proves_each_containment(report: DrillReport) -> None:
    bad = _result(report, "bad-release").registry
    assert bad["active_version"] == "v1"
    assert any(v["version"] == "v2" and v["unhealthy"] for v in bad["versions"])
    assert _result(report, "feature-drift").registry["traffic"] == {"v1": 50.0, "v2": 50.0}
    # a page-level prediction shift on the release v2: half of the traffic to v1, its last known good
    shift = _result(report, "prediction-shift")
    assert shift.registry["active_version"] == "v2" and shift.registry["traffic"] == {"v1": 50.0, "v2": 50.0}
    assert [(e["action"], e["actor"]) for e in shift.registry_history if e["actor"] == "receiver"] == [
        ("split_to_last_known_good", "receiver")
    ]
    assert _result(report, "data-quality").registry["mode"] == "fallback"
    toxic = _result(report, "toxicity")
    assert toxic.registry["guardrail_level"] > 0 and toxic.registry["tools_blocked"] is True
    assert toxic.server_state is not None and toxic.server_state["tools_blocked"] is True
    for untouched in ("auc-drop", "server-down"):
        state = _result(report, untouched).registry
        assert state["active_version"] == "v1" and state["mode"] == "normal"
        assert not [e for e in _result(report, untouched).registry_history if e["actor"] == "receiver"]


def test_dry_run_is_a_tabletop() -> None:
    """Receiver dry_run: the timeline says what would have run; the registry does not change."""
    dry = run_drill([get_scenario("bad-release"), get_scenario("data-quality")], dry_run=True)
    for result in dry.results:
        assert result.contained, result.reason
        assert any("would" in e["message"].lower() for e in result.timeline)
        assert not [e for e in result.registry_history if e["actor"] == "receiver"]
    assert _result(dry, "data-quality").registry["mode"] == "normal"
    assert _result(dry, "bad-release").registry["active_version"] == "v2"  # the release stays: no rollback
