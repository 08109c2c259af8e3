"""Incident lifecycle over a real SQLite file and real runbooks: dedupe, joins, severity, resolution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from receiver.incidents import IncidentEvent
from receiver.pipeline import Pipeline
from receiver.runbooks import RunbookSet, load_runbooks
from receiver.store import SQLiteStore, open_store
from tests.support.payloads import alert, notification, write_runbooks


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.batches: list[list[IncidentEvent]] = []

    def handle(self, events: Any) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError("chat is down")
        self.batches.append(list(events))


@pytest.fixture
def runbooks(tmp_path: Path) -> RunbookSet:
    return load_runbooks(write_runbooks(tmp_path / "runbooks"))


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "data")
    yield opened
    opened.close()


def feed(pipeline: Pipeline, *docs: dict[str, Any]) -> list[str]:
    """Store each document durably, drain the pipeline; return the event kinds produced."""
    for doc in docs:
        pipeline.store.record_notification(json.dumps(doc).encode())
    before = len(getattr(pipeline.responder, "batches", []))
    pipeline.drain()
    batches = getattr(pipeline.responder, "batches", [])[before:]
    return [event.kind for batch in batches for event in batch]


def kinds(store: SQLiteStore, incident_id: int) -> list[str]:
    return [entry.kind for entry in store.get_incident(incident_id).timeline]


def test_firing_group_opens_one_incident_and_repeats_add_nothing(
    store: SQLiteStore, runbooks: RunbookSet
) -> None:
    pipeline = Pipeline(store, runbooks, Recorder())
    doc = notification(alert(feature="age"), alert(feature="income"))
    assert feed(pipeline, doc) == ["opened", "joined"]
    (incident,) = store.list_incidents()
    assert (incident.runbook_id, incident.model, incident.state) == ("feature-drift", "churn", "open")
    timeline = kinds(store, incident.id)
    assert timeline == ["opened", "severity", "alert_firing", "alert_firing"]
    # a repeat flush, a retry and an HA duplicate: no events, no timeline entries, no incident
    assert feed(pipeline, doc, doc, doc) == []
    assert len(store.list_incidents()) == 1
    assert kinds(store, incident.id) == timeline


def test_severity_decided_on_open_and_only_raised(store: SQLiteStore, runbooks: RunbookSet) -> None:
    pipeline = Pipeline(store, runbooks, Recorder())
    feed(pipeline, notification(alert(value="0.1", feature="a")))
    (incident,) = store.list_incidents()
    assert incident.severity == "SEV3"
    assert feed(
        pipeline, notification(alert(value="0.1", feature="a"), alert(value="0.25", feature="b"))
    ) == ["joined", "severity_raised"]
    # a lower value joining never lowers it; the third firing alert raises to SEV1 via firing_count
    assert feed(pipeline, notification(alert(value="0.01", feature="c"))) == ["joined", "severity_raised"]
    detail = store.get_incident(incident.id)
    assert detail.incident.severity == "SEV1"
    raised = [e for e in detail.timeline if e.kind == "severity"]
    assert [e.data["level"] for e in raised] == ["SEV3", "SEV2", "SEV1"]
    assert "raised from SEV2 to SEV1" in raised[-1].message and "(3 firing)" in raised[-1].message


def test_resolution_and_a_new_incident_after_it(store: SQLiteStore, runbooks: RunbookSet) -> None:
    pipeline = Pipeline(store, runbooks, Recorder())
    feed(pipeline, notification(alert(feature="a"), alert(feature="b")))
    resolved_a = alert("resolved", feature="a", ends_at="2024-05-01T10:05:00Z")
    assert feed(pipeline, notification(resolved_a, alert(feature="b"))) == []
    (incident,) = store.list_incidents()
    assert incident.state == "open"
    both = notification(resolved_a, alert("resolved", feature="b", ends_at="2024-05-01T10:06:00Z"))
    assert feed(pipeline, both, both) == ["resolved"]
    detail = store.get_incident(incident.id)
    assert detail.incident.state == "resolved" and detail.incident.resolved_at
    assert [a.status for a in detail.alerts] == ["resolved", "resolved"]
    assert kinds(store, incident.id).count("resolved") == 1
    # a stale retry of the old firing changes nothing; a new firing episode opens a new incident
    assert feed(pipeline, notification(alert(feature="a"))) == []
    assert feed(pipeline, notification(alert(feature="a", starts_at="2024-05-01T12:00:00Z"))) == ["opened"]
    assert [i.state for i in store.list_incidents()] == ["open", "resolved"]


def test_different_group_values_and_unmatched_alerts(store: SQLiteStore, runbooks: RunbookSet) -> None:
    pipeline = Pipeline(store, runbooks, Recorder())
    feed(
        pipeline,
        notification(
            alert(model="churn"), alert(model="fraud"), alert(alertname="DiskFull", incident_type="disk")
        ),
    )
    incidents = store.list_incidents()
    assert sorted((i.runbook_id, i.model) for i in incidents) == [
        ("feature-drift", "churn"),
        ("feature-drift", "fraud"),
        ("unmatched", "churn"),
    ]


def test_truncation_recorded_once_per_incident(store: SQLiteStore, runbooks: RunbookSet) -> None:
    pipeline = Pipeline(store, runbooks, Recorder())
    doc = notification(alert(feature="a"), alert(model="fraud"), truncated=5)
    feed(pipeline, doc, doc)
    for incident in store.list_incidents():
        entries = [e for e in store.get_incident(incident.id).timeline if e.kind == "notification_truncated"]
        assert len(entries) == 1 and entries[0].data["truncated_alerts"] == 5


def test_severity_expression_error_goes_on_the_timeline(store: SQLiteStore, runbooks: RunbookSet) -> None:
    pipeline = Pipeline(store, runbooks, Recorder())
    feed(pipeline, notification(alert(incident_type="latency", value=None, alertname="Slow")))
    (incident,) = store.list_incidents()
    errors = [e for e in store.get_incident(incident.id).timeline if e.kind == "severity_expression_error"]
    assert incident.severity == "SEV3"
    assert len(errors) == 1 and errors[0].data["expression"] == "value > 1"


def test_jinja_in_labels_is_stored_literally(store: SQLiteStore, runbooks: RunbookSet) -> None:
    pipeline = Pipeline(store, runbooks, Recorder())
    feed(pipeline, notification(alert(model="{{ 7*7 }}")))
    (incident,) = store.list_incidents()
    assert incident.model == "{{ 7*7 }}" and "{{ 7*7 }}" in incident.title
    assert store.get_incident(incident.id).alerts[0].labels["model"] == "{{ 7*7 }}"


def test_responder_failure_is_retried_and_loses_nothing(store: SQLiteStore, runbooks: RunbookSet) -> None:
    responder = Recorder(fail=1)
    pipeline = Pipeline(store, runbooks, responder, base_delay=0.0)
    store.record_notification(json.dumps(notification()).encode())
    assert pipeline.apply_next() and pipeline.respond_next()  # applied, then the responder fails
    assert responder.batches == [] and store.pending_count() == 1
    assert len(store.list_incidents()) == 1  # the incident state is committed regardless
    pipeline.drain()
    assert [[e.kind for e in batch] for batch in responder.batches] == [["opened"]]
    assert store.pending_count() == 0
