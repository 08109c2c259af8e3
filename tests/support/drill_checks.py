"""Assertions on a drill report shared by the drill tests on the first version pair and on the others."""

from __future__ import annotations

from receiver.drill.floors import SIGNAL_HOP
from receiver.drill.results import HOPS, DrillReport, ScenarioResult
from receiver.drill.scenarios import get_scenario


def result_of(report: DrillReport, name: str) -> ScenarioResult:
    return next(r for r in report.results if r.scenario == name)


def check_contained(report: DrillReport, name: str) -> None:
    """The scenario was contained by its runbook, its hops in order and none before its floor."""
    scenario = get_scenario(name)
    result = result_of(report, name)
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


def check_messages(report: DrillReport, name: str) -> None:
    """Status messages reached the chat sink, name the model and link to this stack; pages where due."""
    result = result_of(report, name)
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


def check_one_incident(report: DrillReport, name: str, runbook: str) -> None:
    """The fault opened one incident, under ``runbook``: grouping and inhibition held through the
    containment (a rollback used to open a second errors incident once the release watch ended). The
    stale-labels ticket is the drill's own: its models get no ground-truth labels."""
    opened = [i["runbook_id"] for i in result_of(report, name).incidents]
    assert [r for r in opened if r != "stale-labels"] == [runbook], opened
