"""Severity decision tables: first true row wins, failing rows count as false and are reported."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.runbooks import Runbook, SeverityContext, parse_value, unmatched_runbook
from receiver.runbooks.severity import more_severe


def _runbook(rows: list[dict[str, Any]], **extra: Any) -> Runbook:
    return Runbook.from_document({"id": "t", "title": "t", "match": ['a="b"'], "severity": rows, **extra})


DRIFT_TABLE = [
    {"when": 'value >= 0.35 or labels.tier == "critical"', "level": "SEV1"},
    {"when": "value >= 0.2", "level": "SEV2"},
    {"level": "SEV3"},
]


def ctx(value: float | None = None, labels: dict[str, str] | None = None, **kw: Any) -> SeverityContext:
    return SeverityContext(
        labels=labels or {"model": "churn"}, annotations=kw.pop("annotations", {}), value=value, **kw
    )


@pytest.mark.parametrize(
    ("value", "labels", "level"),
    [
        (0.5, {}, "SEV1"),
        (0.35, {}, "SEV1"),
        (0.25, {}, "SEV2"),
        (0.2, {}, "SEV2"),
        (0.1, {}, "SEV3"),
        (0.1, {"tier": "critical"}, "SEV1"),
    ],
)
def test_first_true_row_wins(value: float, labels: dict[str, str], level: str) -> None:
    runbook = _runbook(DRIFT_TABLE)
    assert runbook.decide_severity(ctx(value, {"model": "churn", **labels})) == level


def test_missing_label_reads_as_empty_string_not_an_error() -> None:
    decision = _runbook(DRIFT_TABLE).decide_severity_with_trace(ctx(0.1))
    assert decision.level == "SEV3"
    assert decision.row == 2
    assert decision.errors == ()


def test_runtime_error_row_counts_as_false_and_is_reported() -> None:
    # value is None: "None >= 0.35" raises inside the sandbox; the row is false, the error is returned.
    decision = _runbook(
        [
            {"when": "value >= 0.35", "level": "SEV1"},
            {"when": 'labels.severity == "page"', "level": "SEV2"},
            {"level": "SEV3"},
        ]
    ).decide_severity_with_trace(ctx(None, {"severity": "page"}))
    assert decision.level == "SEV2"
    assert decision.row == 1
    assert len(decision.errors) == 1
    error = decision.errors[0]
    assert error.row == 0
    assert error.expression == "value >= 0.35"
    assert "TypeError" in error.message or "not supported" in error.message
    assert str(error).startswith("severity[0].when: ")


def test_every_row_failing_gives_the_default_with_all_errors() -> None:
    decision = _runbook(
        [
            {"when": "value > 1", "level": "SEV1"},
            {"when": "facts.age_minutes > 30", "level": "SEV2"},  # strict: missing fact is an error
        ]
    ).decide_severity_with_trace(ctx(None))
    assert decision.level == "SEV3"
    assert decision.row is None
    assert [e.row for e in decision.errors] == [0, 1]
    assert "age_minutes" in decision.errors[1].message


def test_no_true_row_defaults_to_sev3() -> None:
    decision = _runbook([{"when": "value > 10", "level": "SEV1"}]).decide_severity_with_trace(ctx(1.0))
    assert (decision.level, decision.row, decision.errors) == ("SEV3", None, ())


def test_firing_count_and_facts_are_visible() -> None:
    runbook = _runbook(
        [
            {"when": "firing_count >= 3", "level": "SEV1"},
            {"when": "facts.age_minutes >= 30", "level": "SEV2"},
            {"level": "SEV3"},
        ]
    )
    assert runbook.decide_severity(ctx(firing_count=3, facts={"age_minutes": 0})) == "SEV1"
    assert runbook.decide_severity(ctx(firing_count=1, facts={"age_minutes": 45})) == "SEV2"
    assert runbook.decide_severity(ctx(firing_count=1, facts={"age_minutes": 5})) == "SEV3"


def test_annotations_are_visible_and_filters_work() -> None:
    runbook = _runbook(
        [{"when": "value >= 3 * (annotations.threshold | float(0))", "level": "SEV1"}, {"level": "SEV2"}]
    )
    assert runbook.decide_severity(ctx(0.9, annotations={"threshold": "0.25"})) == "SEV1"
    assert runbook.decide_severity(ctx(0.5, annotations={"threshold": "0.25"})) == "SEV2"


def test_label_values_are_data_never_templates() -> None:
    runbook = _runbook(
        [
            {"when": 'labels.team == "{{ 7*7 }}"', "level": "SEV1"},
            {"when": 'labels.team == "49"', "level": "SEV2"},
            {"level": "SEV3"},
        ],
        owners={"ml_owner": "{{ labels.team }}-oncall"},
    )
    labels = {"team": "{{ 7*7 }}"}
    assert runbook.decide_severity(ctx(None, labels)) == "SEV1"
    owners, errors = runbook.render_owners(labels)
    assert owners == {"ml_owner": "{{ 7*7 }}-oncall"}
    assert errors == []


def test_sandbox_blocks_unsafe_attribute_access_as_a_row_error() -> None:
    decision = _runbook([{"when": "labels.__class__.__mro__", "level": "SEV1"}]).decide_severity_with_trace(
        ctx(None)
    )
    assert decision.level == "SEV3"
    assert len(decision.errors) == 1


def test_from_alert_parses_the_value_annotation() -> None:
    context = SeverityContext.from_alert(
        {"model": "m"}, {"value": " 0.42 "}, firing_count=2, facts={"age_minutes": 3}
    )
    assert context.value == pytest.approx(0.42)
    assert context.firing_count == 2
    assert context.facts["age_minutes"] == 3


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, None),
        ({"value": ""}, None),
        ({"value": "n/a"}, None),
        ({"value": "NaN"}, None),
        ({"value": "1e-3"}, 0.001),
        ({"value": "+Inf"}, float("inf")),
        ({"value": "7"}, 7.0),
    ],
)
def test_parse_value(annotations: dict[str, str], expected: float | None) -> None:
    assert parse_value(annotations) == expected


def test_unmatched_runbook_severity() -> None:
    runbook = unmatched_runbook()
    assert runbook.decide_severity(ctx(None, {"severity": "page"})) == "SEV2"
    assert runbook.decide_severity(ctx(None, {"severity": "ticket"})) == "SEV3"
    assert runbook.decide_severity(ctx(None, {})) == "SEV3"
    assert runbook.document["contain"] == [] and runbook.document["recover"] == []


def test_more_severe() -> None:
    assert more_severe("SEV2", "SEV1") == "SEV1"
    assert more_severe("SEV2", "SEV3") == "SEV2"


def test_owner_template_error_keeps_the_raw_text() -> None:
    runbook = _runbook(
        [{"level": "SEV3"}],
        owners={"comms": "{{ labels.team | nosuchfilter }}", "ml_owner": '{{ labels.team or "ml-models" }}'},
    )
    owners, errors = runbook.render_owners({"model": "m"})
    assert owners["ml_owner"] == "ml-models"  # missing label reads as ""
    assert owners["comms"] == "{{ labels.team | nosuchfilter }}"
    assert len(errors) == 1 and errors[0].startswith("owners.comms:")
