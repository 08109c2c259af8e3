"""The bad-release drill on every selected version pair after the first (trixie's Alertmanager 0.28 and
Prometheus 2.53 by default): the whole loop, including the release watch and inhibition, on the newer parts.

The eight-scenario set runs once, on the first pair (test_drills.py); one scenario here covers what differs
between the pairs (rule evaluation, Alertmanager grouping, inhibition and the webhook payload) for about a
third of the cost. With one pair selected there is nothing to run here and pytest reports an empty
parameter set.
"""

from __future__ import annotations

import pytest

from receiver.drill.run import run_drill
from receiver.drill.scenarios import get_scenario
from tests.support.drill_checks import check_contained, check_messages, check_one_incident, result_of
from tests.support.realparts import PartsVersions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420), pytest.mark.pairs("rest")]


def test_bad_release_rolled_back(real_parts: PartsVersions) -> None:
    report = run_drill([get_scenario("bad-release")])
    assert report.problems == []
    check_contained(report, "bad-release")
    check_messages(report, "bad-release")
    check_one_incident(report, "bad-release", runbook="bad-release")
    registry = result_of(report, "bad-release").registry
    assert registry["active_version"] == "v1"
    assert any(v["version"] == "v2" and v["unhealthy"] for v in registry["versions"])
