"""Precision, recall and detection delay on hand-made firing intervals and incidents."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.backtest.engine import AlertResult, BacktestResult, Episode
from receiver.backtest.rules import AlertRule
from receiver.backtest.scoring import Incident, load_incidents, score
from receiver.errors import BacktestError


def alert(name: str, kind: str, *intervals: tuple[str, float, float | None]) -> AlertResult:
    rule = AlertRule(alert=name, expr="x", labels={"incident_type": kind})
    episodes = [
        Episode({"alertname": name, "model": model, "incident_type": kind}, start - 60, start, end)
        for model, start, end in intervals
    ]
    return AlertResult(rule, "x", 60.0, episodes)


def test_precision_recall_and_delay_per_alert_and_overall():
    result = BacktestResult(
        0,
        10_000,
        [
            alert("ErrorsFast", "errors", ("a", 1_300, 2_000), ("a", 8_000, 8_100), ("b", 5_000, 5_500)),
            alert("Drift", "drift", ("a", 3_500, None)),
        ],
    )
    incidents = [
        Incident("a", "errors", 1_000, 1_900),
        Incident("b", "errors", 4_000, 4_500),  # ErrorsFast fires at 5000: within the 600 s grace
        Incident("a", "errors", 6_000, 6_500),  # never detected
        Incident("a", "drift", 3_000, 4_000),
        Incident("b", "drift", 3_000, 4_000),  # Drift fires for model a only: a miss for b
    ]
    scored = score(result, incidents, grace=600)
    fast, drift = scored.alerts
    assert (fast.firing, fast.true_positives, fast.false_positives) == (3, 2, 1)
    assert (fast.incidents, fast.detected, fast.false_negatives) == (3, 2, 1)
    assert fast.precision == pytest.approx(2 / 3)
    assert fast.recall == pytest.approx(2 / 3)
    assert fast.delays == [300, 1_000]
    assert fast.median_delay == 650 and fast.max_delay == 1_000
    assert (drift.precision, drift.recall, drift.delays) == (1.0, 0.5, [500])
    assert scored.overall.recall == pytest.approx(3 / 5)
    assert scored.overall.precision == pytest.approx(3 / 4)
    assert [i.start for i in scored.false_positive_intervals] == [8_000]
    assert {o.incident.start: o.detected_by for o in scored.incidents}[1_000] == ("ErrorsFast",)


def test_grace_period_bounds_late_detections():
    result = BacktestResult(0, 10_000, [alert("E", "errors", ("a", 2_000, 2_100))])
    incident = Incident("a", "errors", 1_000, 1_500)
    assert score(result, [incident], grace=499).overall.detected == 0
    assert score(result, [incident], grace=500).overall.detected == 1


def test_interval_ending_at_incident_start_does_not_match():
    result = BacktestResult(0, 10_000, [alert("E", "errors", ("a", 500, 1_000))])
    scored = score(result, [Incident("a", "errors", 1_000, 2_000)], grace=0)
    assert scored.overall.detected == 0 and scored.overall.false_positives == 1


def test_incident_naming_an_alert_only_counts_for_it():
    result = BacktestResult(
        0,
        10_000,
        [alert("Fast", "errors", ("a", 1_100, 1_200)), alert("Slow", "errors", ("a", 1_100, 1_200))],
    )
    scored = score(result, [Incident("a", "errors", 1_000, 1_500, alertname="Slow")])
    fast, slow = scored.alerts
    assert (fast.incidents, fast.false_positives) == (0, 1)
    assert (slow.incidents, slow.detected) == (1, 1)


def test_no_firing_and_no_incidents_give_undefined_ratios():
    scored = score(BacktestResult(0, 100, [alert("E", "errors")]), [])
    assert scored.overall.precision is None and scored.overall.recall is None


def test_load_incidents_accepts_rfc3339_and_unix(tmp_path: Path):
    path = tmp_path / "incidents.yml"
    path.write_text(
        "incidents:\n  - {model: a, incident_type: errors, start: '2024-05-01T12:00:00Z', end: 1714565400}\n"
    )
    [incident] = load_incidents(path)
    assert (incident.start, incident.end) == (1714564800.0, 1714565400.0)


def test_load_incidents_names_every_bad_entry(tmp_path: Path):
    path = tmp_path / "incidents.yml"
    path.write_text(
        "- {model: a, incident_type: errors, start: yesterday, end: 10}\n"
        "- {model: a, start: 1, end: 2}\n"
        "- {model: a, incident_type: drift, start: 5, end: 1}\n"
    )
    with pytest.raises(BacktestError) as caught:
        load_incidents(path)
    problems = caught.value.problems
    assert len(problems) == 3
    assert "incident #1 start" in problems[0] and "'yesterday'" in problems[0]
    assert "incident #2: missing incident_type" in problems[1]
    assert "incident #3: end is before start" in problems[2]
