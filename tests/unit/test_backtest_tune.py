"""Pure parts of ``receiver backtest --tune``: finding and swapping a rule's threshold, the front, the
suggestion and the rule diff."""

from __future__ import annotations

from pathlib import Path

from receiver.backtest.rules import AlertRule
from receiver.backtest.tune import AlertTuning, Setting, find_threshold, rule_diff, with_threshold


def test_find_threshold_takes_the_first_number_compared_against() -> None:
    assert find_threshold("psi > 0.2 and on (model) reqs >= 200") == 0.2
    assert find_threshold("lb > on (model) (14.4 * slo)") == 14.4
    assert find_threshold("lb > on (model) group_left () (6 * slo)") == 6.0
    assert find_threshold("x < 1") == 1.0
    assert find_threshold("up == 0") is None
    assert find_threshold("rate(x[5m]) > y") is None


def test_with_threshold_swaps_every_comparison_against_that_number_only() -> None:
    expr = "(a > 0.02 and on (model) n >= 5) or (b > 0.02 and on (model) m >= 5)"
    assert (
        with_threshold(expr, 0.02, 0.03)
        == "(a > 0.03 and on (model) n >= 5) or (b > 0.03 and on (model) m >= 5)"
    )
    assert with_threshold("lb > on (model) (14.4 * slo)", 14.4, 7.2) == "lb > on (model) (7.2 * slo)"
    assert with_threshold("x > 0.25 and z > 4", 0.25, 0.125) == "x > 0.125 and z > 4"


def _tuning(settings: list[Setting], threshold: float = 0.2, for_s: float = 300.0) -> AlertTuning:
    rule = AlertRule(
        "DriftHigh",
        "psi > 0.2",
        for_s,
        labels={"severity": "page", "incident_type": "drift"},
        source="rules.yml",
    )
    return AlertTuning(rule, threshold, 2, settings)


def test_front_today_and_suggestion() -> None:
    today = Setting(0.2, 300.0, 0, 1.0, 400.0, 500.0)
    faster = Setting(0.2, 120.0, 0, 1.0, 200.0, 300.0)  # dominates today
    noisy = Setting(0.1, 0.0, 3, 1.0, 60.0, 60.0)  # faster but noisy: on the front
    blind = Setting(0.4, 300.0, 0, 0.5, 400.0, 400.0)  # dominated
    instant = Setting(0.2, 0.0, 0, 1.0, 100.0, 100.0)  # best, but for: 0 is never suggested
    tuning = _tuning([today, faster, noisy, blind, instant])
    assert tuning.today == today
    assert instant in tuning.front and noisy in tuning.front
    assert today not in tuning.front and blind not in tuning.front
    assert tuning.suggested == faster


def test_today_is_kept_on_a_tie() -> None:
    today = Setting(0.2, 300.0, 0, 1.0, 400.0, 500.0)
    same = Setting(0.15, 300.0, 0, 1.0, 400.0, 500.0)
    assert _tuning([same, today]).suggested == today


def test_rule_diff_changes_only_the_rule_threshold_and_for(tmp_path: Path) -> None:
    source = tmp_path / "rules.yml"
    source.write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - alert: Other\n        expr: |\n          psi > 0.2\n        for: 5m\n"
        "      - alert: DriftHigh\n        expr: |\n          model:psi:max > 0.2\n"
        "          and on (model) model:n:increase15m >= 200\n        for: 5m\n"
        "        labels: {severity: page}\n"
    )
    tuning = _tuning([Setting(0.2, 300.0, 0, 1.0, 1.0, 1.0)])
    diff = rule_diff(source, tuning, Setting(0.3, 120.0, 0, 1.0, 1.0, 1.0))
    assert "-          model:psi:max > 0.2\n+          model:psi:max > 0.3\n" in diff
    assert "-        for: 5m\n+        for: 2m\n" in diff
    assert diff.count("+        for:") == 1 and "psi > 0.3\n" not in diff.replace("model:psi:max > 0.3\n", "")
