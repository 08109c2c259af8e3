"""Status update wording: defaults per event and audience, runbook overrides, injection, safe fallback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.comms.message import AUDIENCES, EVENTS, ActionSummary, Links, ModelVersions, StatusUpdate
from receiver.comms.templates import DEFAULT_TEMPLATES, render_message, validate_overrides
from receiver.evidence import EvidenceSnapshot

HOSTILE = "{{ 7*7 }} {% raw %} <b>html</b>"


def make_update(event: str = "opened", **overrides: object) -> StatusUpdate:
    fields: dict[str, object] = dict(
        incident_id="42",
        event=event,
        severity="SEV2",
        state="open",
        title="Feature drift on fraud",
        model=ModelVersions("fraud", active="v4", last_known_good="v3", changed="v4 promoted 12 min ago"),
        impact="fraud scores skewed for all traffic",
        actions=(ActionSummary("traffic_split", "succeeded", "50% to v3"),),
        evidence=(
            EvidenceSnapshot(
                "max PSI",
                'max(model_feature_psi{model="fraud"})',
                "2024-05-01T10:00:00+00:00",
                None,
                [{"labels": {}, "value": 0.3127, "timestamp": 1.0}],
                0.3127,
            ),
        ),
        owners={"incident_commander": "ml-oncall", "comms": "ml-comms"},
        next_update_at=datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
        links=Links(
            dashboard="http://grafana.local/d/models",
            runbook="http://wiki.local/drift",
            incident="http://receiver.local/incidents/42",
        ),
        labels={"model": "fraud", "team": "risk"},
        annotations={"summary": "PSI above 0.2"},
    )
    fields.update(overrides)
    return StatusUpdate(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("event", EVENTS)
def test_oncall_default_carries_the_technical_facts(event: str) -> None:
    msg = render_message(make_update(event), "oncall")
    assert not msg.fallback, msg.error
    for fact in (
        "SEV2",
        "Feature drift on fraud",
        "v4",
        "v3",
        "fraud scores skewed",
        "max PSI: 0.3127",
        'max(model_feature_psi{model="fraud"})',
        "traffic_split: succeeded (50% to v3)",
        "incident_commander=ml-oncall",
        "Next update: 10:30 UTC",
        "http://grafana.local/d/models",
        "http://receiver.local/incidents/42",
    ):
        assert fact in msg.text, (event, fact)


@pytest.mark.parametrize("event", EVENTS)
def test_stakeholder_default_is_plain(event: str) -> None:
    msg = render_message(make_update(event), "stakeholder")
    assert not msg.fallback, msg.error
    assert "fraud scores skewed for all traffic" in msg.text
    assert "moved part of the traffic to the last known good version" in msg.text
    assert "Next update: 10:30 UTC." in msg.text
    assert "Contact: ml-comms." in msg.text
    for jargon in ("model_feature_psi", "PromQL", "traffic_split", "SEV2", "v4", "PSI"):
        assert jargon not in msg.text, (event, jargon)


def test_every_event_and_audience_has_a_distinct_default() -> None:
    sources = {DEFAULT_TEMPLATES[e][a] for e in EVENTS for a in AUDIENCES}
    assert len(sources) == len(EVENTS) * len(AUDIENCES)


def test_failed_action_and_evidence_error_are_reported_honestly() -> None:
    update = make_update(
        "escalated",
        actions=(ActionSummary("rollback", "failed", "registry refused: one version left"),),
        evidence=(EvidenceSnapshot("max PSI", "q", "t", error="evidence unavailable: cannot connect"),),
        owners={"escalation": "ml-senior"},
    )
    oncall = render_message(update, "oncall").text
    assert "rollback: failed (registry refused: one version left)" in oncall
    assert "max PSI: evidence unavailable: cannot connect" in oncall
    assert "Needs a human: ml-senior." in oncall
    plain = render_message(update, "stakeholder").text
    assert (
        "attempted: switched the model back to its last known good version (this did not work yet)" in plain
    )


def test_stakeholders_hear_that_risky_tools_were_blocked_only_when_they_were() -> None:
    blocked = make_update(
        "contained",
        actions=(
            ActionSummary("guardrail", "succeeded", "chat: guardrail level 0 -> 1; risky tools blocked"),
        ),
    )
    text = render_message(blocked, "stakeholder").text
    assert "tightened the safety filters on the model's output and blocked its risky tools" in text
    level_only = make_update(
        "contained", actions=(ActionSummary("guardrail", "succeeded", "chat: guardrail level 0 -> 1"),)
    )
    text = render_message(level_only, "stakeholder").text
    assert "tightened the safety filters on the model's output" in text and "risky tools" not in text


def test_no_last_known_good_says_there_is_nothing_to_fall_back_to() -> None:
    update = make_update("contained", model=ModelVersions("fraud", active="v3", last_known_good=None))
    text = render_message(update, "oncall").text
    assert "active v3 · last known good none (no other healthy version to fall back to)" in text


def test_alert_data_is_never_rendered_as_template() -> None:
    update = make_update(
        title=f"Drift {HOSTILE}",
        impact=HOSTILE,
        summary=HOSTILE,
        labels={"model": HOSTILE},
        annotations={"description": HOSTILE},
    )
    for audience in AUDIENCES:
        msg = render_message(update, audience)
        assert not msg.fallback, msg.error
        assert HOSTILE in msg.text and "49" not in msg.text
    override = {"opened": "label={{ labels.model }} note={{ annotations.description }}"}
    msg = render_message(update, "oncall", override)
    assert msg.text == f"label={HOSTILE} note={HOSTILE}"


def test_runbook_override_per_event_and_per_audience() -> None:
    overrides = {
        "opened": {"stakeholder": "Heads up: {{ model.name }} is degraded. Next: {{ next_update }}"},
        "resolved": "All clear on {{ model.name }} ({{ severity }})",
    }
    assert (
        render_message(make_update("opened"), "stakeholder", overrides).text
        == "Heads up: fraud is degraded. Next: 10:30 UTC"
    )
    assert not render_message(make_update("opened"), "oncall", overrides).text.startswith("Heads up")
    assert render_message(make_update("resolved"), "oncall", overrides).text == "All clear on fraud (SEV2)"


@pytest.mark.parametrize(
    ("template", "error_part"),
    [
        ("{{ labels.model ", "invalid template"),
        ("{{ no_such_name }}", "'no_such_name' is undefined"),
        ("{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("{% if false %}x{% endif %}   ", "rendered an empty message"),
    ],
)
def test_broken_runbook_template_falls_back_with_the_error(template: str, error_part: str) -> None:
    msg = render_message(make_update("opened"), "oncall", {"opened": template})
    assert msg.fallback and msg.error is not None and error_part in msg.error
    assert "runbook template 'opened'" in msg.error
    assert f"message template failed: {msg.error}" in msg.text
    for fact in (
        "[SEV2] Investigating: Feature drift on fraud",
        "Incident 42",
        "Model: fraud",
        "active v4",
        "Impact: fraud scores skewed",
        "Evidence max PSI: 0.3127",
        "Action traffic_split: succeeded",
        "Next update: 10:30 UTC",
        "Incident: http://receiver.local/incidents/42",
    ):
        assert fact in msg.text, fact


def test_validate_overrides_names_every_problem() -> None:
    problems = validate_overrides(
        {
            "opened": "{{ ok }}",
            "update": "{% if %}",
            "paged": "x",
            "resolved": {"oncall": 3, "board": "x"},
        }
    )
    assert any(p.startswith("comms.templates.update: invalid template") for p in problems)
    assert any("comms.templates.paged: unknown event" in p for p in problems)
    assert "comms.templates.resolved.oncall: must be a string" in problems
    assert any("unknown audience(s) board" in p for p in problems)
    assert len(problems) == 4
    assert validate_overrides(None) == [] and validate_overrides({"opened": "{{ x }}"}) == []
    assert validate_overrides(["x"]) == ["comms.templates must be a mapping of event to template"]
