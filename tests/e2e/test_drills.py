"""Every drill scenario through the native drill: real Prometheus, Alertmanager, receiver, registry, model
servers, traffic and a chat/pager sink, with the time-compressed rules. Nothing is mocked.

All scenarios run together on one stack (one model and model server each), so the set costs about as
much as its slowest scenario (~3 minutes on 2 cores); the dry run adds about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from receiver.drill.results import DrillReport
from receiver.drill.run import run_drill
from receiver.drill.scenarios import SCENARIOS, get_scenario
from tests.support.drill_checks import check_contained, check_messages, check_one_incident, result_of
from tests.support.realparts import PartsVersions

# the whole set on the first selected version pair; test_drill_other_pairs.py drills the others
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420), pytest.mark.pairs("first")]


@pytest.fixture(scope="module")
def report(real_parts: PartsVersions) -> Iterator[DrillReport]:
    yield run_drill(list(SCENARIOS))


def test_stack_started_clean(report: DrillReport) -> None:
    assert report.problems == []
    assert report.dropped_settings == [], "the receiver must know every setting the drill configures"


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_contained(report: DrillReport, name: str) -> None:
    check_contained(report, name)


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_messages_posted(report: DrillReport, name: str) -> None:
    check_messages(report, name)


def test_registry_state_proves_each_containment(report: DrillReport) -> None:
    check_one_incident(report, "bad-release", runbook="bad-release")
    bad = result_of(report, "bad-release").registry
    assert bad["active_version"] == "v1"
    assert any(v["version"] == "v2" and v["unhealthy"] for v in bad["versions"])
    assert result_of(report, "feature-drift").registry["traffic"] == {"v1": 50.0, "v2": 50.0}
    # a page-level prediction shift on the release v2: half of the traffic to v1, its last known good
    shift = result_of(report, "prediction-shift")
    assert shift.registry["active_version"] == "v2" and shift.registry["traffic"] == {"v1": 50.0, "v2": 50.0}
    assert [(e["action"], e["actor"]) for e in shift.registry_history if e["actor"] == "receiver"] == [
        ("split_to_last_known_good", "receiver")
    ]
    assert result_of(report, "data-quality").registry["mode"] == "fallback"
    toxic = result_of(report, "toxicity")
    assert toxic.registry["guardrail_level"] > 0 and toxic.registry["tools_blocked"] is True
    assert toxic.server_state is not None and toxic.server_state["tools_blocked"] is True
    for untouched in ("auc-drop", "server-down"):
        state = result_of(report, untouched).registry
        assert state["active_version"] == "v1" and state["mode"] == "normal"
        assert not [e for e in result_of(report, untouched).registry_history if e["actor"] == "receiver"]


def test_dry_run_is_a_tabletop() -> None:
    """Receiver dry_run: the timeline says what would have run; the registry does not change."""
    dry = run_drill([get_scenario("bad-release"), get_scenario("data-quality")], dry_run=True)
    for result in dry.results:
        assert result.contained, result.reason
        assert any("would" in e["message"].lower() for e in result.timeline)
        assert not [e for e in result.registry_history if e["actor"] == "receiver"]
    assert result_of(dry, "data-quality").registry["mode"] == "normal"
    assert result_of(dry, "bad-release").registry["active_version"] == "v2"  # the release stays: no rollback
