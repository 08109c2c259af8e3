"""How the drill reads the signal hop from Prometheus's alerts (no stack started: the alert lists are what
``/api/v1/alerts`` returns, and nothing else is reachable, so the incident lookups find nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receiver.drill.floors import SIGNAL_HOP, Floors
from receiver.drill.run import DrillRun
from receiver.drill.scenarios import get_scenario
from receiver.drill.stack import StackOptions

FAULT_AT = 1_800_000_000.0


def alert(
    name: str,
    state: str,
    after_fault: float,
    model: str = "drill-data",
    kind: str = "data_quality",
    **labels: str,
) -> dict[str, object]:
    at = datetime.fromtimestamp(FAULT_AT + after_fault, tz=UTC).isoformat().replace("+00:00", "Z")
    return {
        "labels": {"alertname": name, "model": model, "incident_type": kind, **labels},
        "state": state,
        "activeAt": at,
    }


@pytest.fixture
def run(tmp_path: Path) -> Iterator[DrillRun]:
    drill = DrillRun([get_scenario("data-quality")], options=StackOptions(workdir=tmp_path))
    drill.results["data-quality"].fault_at = FAULT_AT
    yield drill
    drill._session.close()


def observe(run: DrillRun, now_after_fault: float, alerts: list[dict[str, object]]) -> None:
    run.observer.observe(
        get_scenario("data-quality"), run.results["data-quality"], FAULT_AT + now_after_fault, alerts, [], []
    )


def test_signal_is_the_earliest_series_of_each_alert_until_a_rule_fires(run: DrillRun) -> None:
    result = run.results["data-quality"]
    noise = [
        alert("ModelInputProblemsHigh", "pending", -30.0, model="drill-other"),
        alert("ModelFeatureDriftHigh", "pending", -20.0, kind="drift"),
    ]
    observe(
        run,
        6.0,
        [
            *noise,
            alert("ModelInputProblemsHigh", "pending", 5.0, feature="a"),
            alert("ModelInputProblemsHigh", "pending", 4.0, feature="b"),
        ],
    )
    assert result.signals == {"ModelInputProblemsHigh": FAULT_AT + 4.0}
    assert result.elapsed(SIGNAL_HOP) == pytest.approx(4.0) and result.times["rule firing"] is None
    # the pending series dropped out and came back: its activeAt moved, and so does the signal
    observe(run, 9.0, [alert("ModelInputProblemsHigh", "pending", 8.0, feature="b")])
    assert result.elapsed(SIGNAL_HOP) == pytest.approx(8.0)
    observe(
        run,
        18.5,
        [
            alert("ModelInputProblemsHigh", "firing", 8.0, feature="b"),
            alert("ModelInputProblemsElevated", "pending", 3.0),
        ],
    )
    assert result.elapsed("rule firing") == pytest.approx(18.5)
    frozen = dict(result.signals)
    observe(run, 30.0, [alert("ModelInputProblemsHigh", "firing", 25.0, feature="c")])
    assert result.signals == frozen  # frozen once a rule fired


def test_settled_floors_use_the_scenario_alert_not_a_ticket_alert(run: DrillRun) -> None:
    result = run.results["data-quality"]
    loop: dict[str, float | None] = {SIGNAL_HOP: 0.0, "rule firing": 10.0, "containment applied": 11.0}
    run.floors = Floors({}, {}, {"data-quality": {"ModelInputProblemsHigh": loop}})
    result.config_floors.update({SIGNAL_HOP: 2.0, "rule firing": 12.0, "containment applied": 13.0})
    # the ticket-severity alert held earlier, but it cannot open this scenario's containment
    result.signals = {"ModelInputProblemsElevated": FAULT_AT + 1.0, "ModelInputProblemsHigh": FAULT_AT + 5.0}
    run._settle_floors(result)
    assert result.signal_alert == "ModelInputProblemsHigh"
    assert result.elapsed(SIGNAL_HOP) == pytest.approx(5.0)
    assert result.floors["containment applied"] == pytest.approx(16.0)
