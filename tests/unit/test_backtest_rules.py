"""Rule file loading (errors name the file, group and rule) and recording-rule inlining."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.backtest.promql import Inliner
from receiver.backtest.rules import RecordingRule, load_rule_files, parse_duration
from receiver.durations import format_duration
from receiver.errors import BacktestError

GOOD = """
groups:
  - name: g1
    interval: 30s
    rules:
      - record: job:errors:ratio
        expr: sum by (model) (rate(errors_total[5m]))
      - alert: ErrorsHigh
        expr: job:errors:ratio > 0.1
        for: 5m
        keep_firing_for: 2m
        labels: {incident_type: errors, severity: page}
        annotations: {summary: "{{ $labels.model }} errors"}
  - name: g2
    rules:
      - alert: Down
        expr: up == 0
"""


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loads_groups_intervals_and_rules(tmp_path: Path):
    g1, g2 = load_rule_files([write(tmp_path, GOOD)])
    assert (g1.name, g1.interval, g2.interval) == ("g1", 30.0, 60.0)
    [record] = g1.recording
    [alert] = g1.alerting
    assert record.record == "job:errors:ratio"
    assert (alert.for_seconds, alert.keep_firing_for_seconds, alert.interval) == (300.0, 120.0, 30.0)
    assert alert.labels == {"incident_type": "errors", "severity": "page"}
    assert g2.alerting[0].for_seconds == 0.0


def test_directories_contribute_their_own_rule_files_only(tmp_path: Path):
    write(tmp_path, GOOD, "a.yml")
    (tmp_path / "notes.txt").write_text("not rules")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "a_test.yml").write_text("rule_files: [../a.yml]\ntests: []\n")  # promtool tests
    assert [g.name for g in load_rule_files([tmp_path])] == ["g1", "g2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5 minutes\n",
            "group 'g' rule 'A': for: not a Prometheus duration",
        ),
        ("groups:\n  - name: g\n    rules:\n      - alert: A\n", "group 'g' rule 'A': 'expr' must be"),
        (
            "groups:\n  - name: g\n    rules:\n      - record: a-b\n        expr: up\n",
            "'a-b' is not a valid metric",
        ),
        ("groups:\n  - name: g\n    rules:\n      - expr: up\n", "rule #1: needs 'record' or 'alert'"),
        (
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels: {1x: y}\n",
            "label name '1x' is not a valid",
        ),
        (
            "groups:\n  - name: g\n    interval: soon\n    rules: []\n",
            "group 'g': interval: not a Prometheus",
        ),
        ("groups: [\n", "not valid YAML"),
        ("rules: []\n", "needs a top-level 'groups' list"),
    ],
)
def test_bad_rule_files_name_file_group_and_rule(tmp_path: Path, text: str, expected: str):
    path = write(tmp_path, text)
    with pytest.raises(BacktestError) as caught:
        load_rule_files([path])
    assert str(path) in caught.value.message
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_missing_file_and_no_alerts_are_errors(tmp_path: Path):
    with pytest.raises(BacktestError, match="does not exist"):
        load_rule_files([tmp_path / "nope.yml"])
    only_records = write(tmp_path, "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n")
    with pytest.raises(BacktestError, match="no alerting rules"):
        load_rule_files([only_records])


def test_durations_round_trip():
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5 and parse_duration("0") == 0
    assert format_duration(5400) == "1h30m" and format_duration(15) == "15s"
    with pytest.raises(ValueError):
        parse_duration("5")


def inliner() -> Inliner:
    return Inliner(
        [
            RecordingRule("m:err:ratio", "sum by (model) (rate(e[5m]))"),
            RecordingRule("m:slo", "max by (model) (slo)", {"window": "5m"}),
            RecordingRule("m:slo", "max by (model) (slo_long)", {"window": "1h"}),
            RecordingRule("m:nested", "m:err:ratio * 2"),
            RecordingRule("model", "vector(1)"),  # a recorded name that collides with a label name
        ]
    )


def test_bare_reference_is_inlined_and_label_names_are_untouched():
    result = inliner().inline('m:err:ratio > on (model) 0.1 and sum by (model) (x{model="model"})', 60)
    assert result.expr == (
        '(sum by (model) (rate(e[5m]))) > on (model) 0.1 and sum by (model) (x{model="model"})'
    )
    assert result.warnings == []


def test_nested_references_and_static_labels_and_alternatives():
    assert inliner().inline("m:nested", 60).expr == "((sum by (model) (rate(e[5m]))) * 2)"
    expr = inliner().inline("m:slo", 60).expr
    assert expr == (
        '(label_replace((max by (model) (slo)), "window", "5m", "", "") or '
        'label_replace((max by (model) (slo_long)), "window", "1h", "", ""))'
    )


def test_matchers_become_filters_and_ranges_become_subqueries():
    expr = inliner().inline('max_over_time(m:err:ratio{model="a", x=~"b.*"}[10m])', 30).expr
    assert expr.startswith("max_over_time((label_replace((label_replace(((sum by (model)")
    assert 'and on(model) label_replace(vector(1), "model", "a", "", "")' in expr
    assert 'label_replace(vector(1), "__backtest_match", "1", "", "")' in expr
    assert expr.endswith(")[10m:30s])")


def test_offset_references_are_left_for_the_tsdb_with_a_warning():
    result = inliner().inline("m:err:ratio offset 1h", 60)
    assert result.expr == "m:err:ratio offset 1h"
    assert "offset" in result.warnings[0]


def test_cycles_are_reported():
    looping = Inliner([RecordingRule("a:x", "b:y + 1"), RecordingRule("b:y", "a:x + 1")])
    with pytest.raises(BacktestError, match="cycle: a:x -> b:y -> a:x"):
        looping.inline("a:x", 60)
