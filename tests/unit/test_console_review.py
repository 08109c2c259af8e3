"""Review with pictures, without a server: the SVG chart escapes what it draws, and the facts the data
answers are computed from the record (detection delay vs for:, time to contain vs target, escalation,
flapping, approvals)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from xml.etree import ElementTree

from receiver.console.charts import Chart, Marker, Series, render_chart
from receiver.review import ReviewChart, render_review, review_facts
from receiver.store.records import AlertRecord, IncidentDetail, IncidentRecord, TimelineEntry

XSS = "<script>alert(1)</script>"


def _detail(contained_at: str | None = "2026-01-01T00:20:00Z") -> IncidentDetail:
    incident = IncidentRecord(
        id=3,
        runbook_id="rb",
        incident_key="k",
        title="drift",
        model="churn",
        group_labels={},
        state="resolved",
        severity="SEV2",
        opened_at="2026-01-01T00:02:00Z",
        updated_at="2026-01-01T01:00:00Z",
        resolved_at="2026-01-01T01:00:00Z",
        contained_at=contained_at,
    )
    alert = AlertRecord("fp1", "FeatureDrift", "resolved", "2026-01-01T00:01:30Z", None, {"team": XSS}, {})
    timeline = [
        TimelineEntry(1, 3, "2026-01-01T00:02:00Z", "alert_firing", "firing", {"fingerprint": "fp1"}),
        TimelineEntry(2, 3, "2026-01-01T00:30:00Z", "alert_firing", "firing again", {"fingerprint": "fp1"}),
    ]
    return IncidentDetail(incident, [alert], timeline)


@dataclass
class _Approval:
    kind: str = "rollback"
    step_id: str = "rb"
    state: str = "approved"
    decided_by: str | None = "alice"
    requested_at: str = "2026-01-01T00:03:00Z"
    decided_at: str | None = "2026-01-01T00:07:30Z"


def test_chart_is_valid_svg_and_escapes_labels() -> None:
    chart = Chart(
        XSS,
        "up",
        0.0,
        100.0,
        [Series(f"team={XSS}", [(0.0, 1.0), (50.0, 2.0), (100.0, 1.5)])],
        [Marker(10.0, "opened", XSS), Marker(99.0, "resolved", "done")],
        threshold=1.8,
    )
    svg = str(render_chart(chart))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = ElementTree.fromstring(svg)  # well-formed XML, so it also works as a data: image
    assert root.tag.endswith("svg") and "style" not in svg  # presentation attributes only (strict CSP)
    assert svg.count("<polyline") == 1 and "threshold 1.8" in svg


def test_facts_answer_what_the_data_knows() -> None:
    doc = {"verify": {"timeout": "15m"}, "escalate": {"after": "30m"}}
    facts = dict(review_facts(_detail(), doc, rule_for={"FeatureDrift": 300.0}, approvals=[_Approval()]))
    assert facts["detection delay of FeatureDrift"].startswith("0m 30s from firing")
    assert (
        "for: 5m 00s" in facts["detection delay of FeatureDrift"]
        and "5m 30s" in facts["detection delay of FeatureDrift"]
    )
    assert facts["time to contain"] == "18m 00s, over the runbook's target of 15m 00s (verify.timeout)"
    assert facts["escalation"] == "did not fire (escalate.after 30m)"
    assert facts["flapping alerts"] == "FeatureDrift fired 2 times"
    assert facts["approval of rollback [rb]"] == "approved by alice, waited 4m 30s"
    unknown = dict(review_facts(_detail(contained_at=None), {}))
    assert "for: is unknown" in unknown["detection delay of FeatureDrift"]
    assert (
        unknown["time to contain"] == "not verified as contained"
        and unknown["approvals"] == "no approval gates"
    )


def test_markdown_embeds_charts_and_leaves_human_sections_empty() -> None:
    svg = str(render_chart(Chart("max PSI", "max(psi)", 0.0, 10.0, [Series("v", [(0.0, 1.0), (10.0, 2.0)])])))
    text = render_review(
        _detail(), facts=review_facts(_detail()), charts=[ReviewChart("max PSI", "max(psi)", svg)]
    )
    assert "## What the data answers" in text and "| flapping alerts | FeatureDrift fired 2 times |" in text
    encoded = text.split("![max PSI](data:image/svg+xml;base64,")[1].split(")")[0]
    assert base64.b64decode(encoded).decode() == svg
    assert "## Root cause" in text and "_To be written by the team" in text
