"""Drill floors from the committed drill configs: the signal's floor and the loop's offsets after it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import pytest

from receiver.drill.floors import SIGNAL_HOP, compute_floors, effective_floors, route_group_wait
from receiver.drill.scenarios import get_scenario
from receiver.drill.stack import StackOptions
from receiver.rulegen import DrillConfigPaths

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack() -> SimpleNamespace:
    """The attributes compute_floors reads, pointing at the committed (generated) drill configs."""
    paths = DrillConfigPaths(
        rules=ROOT / "alert_rules/generated/drill-rules.yml",
        prometheus=ROOT / "prometheus/drill/prometheus.yml",
        alertmanager=ROOT / "alertmanager/drill/alertmanager.yml",
    )
    return SimpleNamespace(
        config_paths=paths, options=StackOptions(), runbooks_dir=ROOT / "runbooks", factor=30
    )


def _known(offsets: Mapping[str, float | None]) -> dict[str, float]:
    """The offsets of a route whose every hop has a floor (a None here would be a bug in floors)."""
    assert None not in offsets.values(), offsets
    return {k: v for k, v in offsets.items() if v is not None}


def test_loop_offsets_follow_the_rule_and_route(stack: SimpleNamespace) -> None:
    scenario = get_scenario("bad-release")
    floors = compute_floors(stack, [scenario])
    loop = _known(floors.after_signal[scenario.name]["ModelErrorBudgetBurnFast"])
    alert = floors.config["alerts"]["ModelErrorBudgetBurnFast"]
    options = StackOptions()
    assert loop[SIGNAL_HOP] == 0.0
    assert loop["rule firing"] == alert["for"] > 0
    assert loop["webhook received"] == alert["for"] + alert["group_wait"]
    # the webhook's commit wakes the receiver's worker: its poll interval is not on the path
    assert loop["containment applied"] == loop["webhook received"]
    assert loop["serving contained"] == pytest.approx(
        loop["containment applied"] + options.registry_poll_interval
    )
    # from the fault, with the signal at its own floor (one 1 s scrape and one 1 s evaluation), the
    # alert allowing the earliest containment sets it: the release watch (for: 2s), not the fast burn
    # (4s) nor the medium one (10s)
    medium = _known(floors.after_signal[scenario.name]["ModelErrorBudgetBurnMedium"])
    release = _known(floors.after_signal[scenario.name]["ModelReleaseErrorRatioHigh"])
    assert medium["containment applied"] > loop["containment applied"] > release["containment applied"]
    from_fault = _known(floors.per_scenario[scenario.name])
    assert from_fault[SIGNAL_HOP] == 2.0
    assert from_fault["containment applied"] == pytest.approx(2.0 + release["containment applied"])


def test_ticket_only_scenario_has_no_serving_or_verified_floor(stack: SimpleNamespace) -> None:
    floors = compute_floors(stack, [get_scenario("server-down")])
    loop = floors.after_signal["server-down"]["ModelTargetDown"]
    assert loop["serving contained"] is None
    assert floors.per_scenario["server-down"]["serving contained"] is None


FROM_FAULT = {SIGNAL_HOP: 2.0, "rule firing": 6.0, "containment applied": 7.2, "serving contained": None}
FAST = {SIGNAL_HOP: 0.0, "rule firing": 4.0, "containment applied": 5.2, "serving contained": None}
SLOW = {SIGNAL_HOP: 0.0, "rule firing": 10.0, "containment applied": 11.2, "serving contained": None}


def test_effective_floor_is_the_later_of_instant_signal_and_measured_signal() -> None:
    late, chosen = effective_floors(FROM_FAULT, {"fast": FAST}, {"fast": 15.0})
    assert chosen == "fast"
    assert late == {
        SIGNAL_HOP: 15.0,
        "rule firing": 19.0,
        "containment applied": 20.2,
        "serving contained": None,
    }
    # a signal measured earlier than its configured floor (a scrape right after the fault) never lowers it
    assert effective_floors(FROM_FAULT, {"fast": FAST}, {"fast": 0.5}) == (FROM_FAULT, "fast")
    assert effective_floors(FROM_FAULT, {"fast": FAST}, {}) == (FROM_FAULT, None)
    # alerts outside the scenario's list (e.g. a ticket-severity one) are ignored
    assert effective_floors(FROM_FAULT, {"fast": FAST}, {"ticket": 1.0}) == (FROM_FAULT, None)


def test_effective_floor_takes_the_alert_allowing_the_earliest_containment() -> None:
    # the slow alert's expression held first (3 s) but with its longer for: it allows containment only at
    # 14.2 s; the fast alert, holding from 6 s, allows 11.2 s and sets the floor
    floors, chosen = effective_floors(FROM_FAULT, {"fast": FAST, "slow": SLOW}, {"fast": 6.0, "slow": 3.0})
    assert chosen == "fast"
    assert floors["containment applied"] == pytest.approx(11.2)
    floors, chosen = effective_floors(FROM_FAULT, {"fast": FAST, "slow": SLOW}, {"fast": 12.0, "slow": 3.0})
    assert chosen == "slow" and floors["containment applied"] == pytest.approx(14.2)


def test_route_group_wait_takes_the_first_matching_child_and_inherits() -> None:
    route = {
        "group_wait": "30s",
        "routes": [
            {
                "matchers": ['severity="page"'],
                "group_wait": "2s",
                "routes": [{"matchers": ['incident_type="toxicity"']}],
            },
            {"matchers": ['severity="ticket"']},
        ],
    }
    assert route_group_wait(route, {"severity": "page", "incident_type": "toxicity"}) == 2.0
    assert route_group_wait(route, {"severity": "ticket"}) == 30.0
    assert route_group_wait(route, {"severity": "none"}) == 30.0
