"""Choosing one runbook per alert: priority, then specificity, then id; the built-in unmatched fallback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from receiver.errors import NotFound
from receiver.runbooks import UNMATCHED_RUNBOOK_ID, Runbook, RunbookSet


def rb(runbook_id: str, match: list[str], **extra: Any) -> Runbook:
    return Runbook.from_document({"id": runbook_id, "title": runbook_id, "match": match, **extra})


def test_higher_priority_wins_over_more_matchers() -> None:
    generic = rb("errors", ['incident_type="errors"', 'model=~".+"', 'severity=~"page|ticket"'])
    release = rb("bad-release", ['cause="release"'], priority=10)
    runbooks = RunbookSet([generic, release])
    labels = {"incident_type": "errors", "model": "churn", "severity": "page", "cause": "release"}
    assert runbooks.match(labels) is release
    assert runbooks.match({**labels, "cause": ""}) is generic
    assert [r.id for r in runbooks.match_all(labels)] == ["bad-release", "errors"]


def test_more_matchers_win_at_equal_priority() -> None:
    auc = rb("auc-drop", ['incident_type="auc_drop"'])
    stale = rb("stale-labels", ['incident_type="auc_drop"', 'alertname="ModelLabelsStale"'])
    runbooks = RunbookSet([auc, stale])
    assert runbooks.match({"incident_type": "auc_drop", "alertname": "ModelLabelsStale"}) is stale
    assert runbooks.match({"incident_type": "auc_drop", "alertname": "ModelAUCDrop"}) is auc


def test_id_breaks_ties_whatever_the_load_order() -> None:
    b = rb("b-runbook", ['model="churn"'])
    a = rb("a-runbook", ['incident_type="drift"'])
    labels = {"model": "churn", "incident_type": "drift"}
    assert RunbookSet([b, a]).match(labels) is a
    assert RunbookSet([a, b]).match(labels) is a
    assert [r.id for r in RunbookSet([b, a]).runbooks] == ["a-runbook", "b-runbook"]


def test_negative_priority_sorts_last() -> None:
    catch_all = rb("catch-all", ['alertname=~".+"'], priority=-5)
    drift = rb("drift", ['incident_type="drift"'])
    runbooks = RunbookSet([catch_all, drift])
    assert [r.id for r in runbooks.runbooks] == ["drift", "catch-all"]
    assert runbooks.match({"alertname": "X", "incident_type": "drift"}) is drift
    assert runbooks.match({"alertname": "X"}) is catch_all


def test_nothing_matches_gives_the_builtin_unmatched_runbook() -> None:
    runbooks = RunbookSet([rb("drift", ['incident_type="drift"'])])
    chosen = runbooks.match({"alertname": "DiskFull", "model": "churn"})
    assert chosen.id == UNMATCHED_RUNBOOK_ID
    assert chosen is runbooks.get(UNMATCHED_RUNBOOK_ID)
    assert chosen.group_by == ["alertname", "model"]
    assert (
        chosen.incident_key({"alertname": "DiskFull", "model": "churn"})
        == 'unmatched|{"alertname":"DiskFull","model":"churn"}'
    )
    assert RunbookSet([]).match({}).id == UNMATCHED_RUNBOOK_ID
    assert len(runbooks) == 1 and UNMATCHED_RUNBOOK_ID in runbooks and "drift" in runbooks


def test_get_unknown_id_is_not_found() -> None:
    with pytest.raises(NotFound, match="no runbook with id 'nope'"):
        RunbookSet([]).get("nope")


def test_incident_key_is_canonical_and_stable() -> None:
    runbook = rb("feature-drift", ['incident_type="drift"'])
    assert runbook.incident_key({"model": "churn", "feature": "age"}) == 'feature-drift|{"model":"churn"}'
    grouped = rb("g", ['a="b"'], group_by=["zone", "model"])
    key = grouped.incident_key({"model": "m", "zone": "eu"})
    assert key == 'g|{"model":"m","zone":"eu"}'  # sorted keys, compact
    assert grouped.incident_key({"zone": "eu"}) == 'g|{"model":"","zone":"eu"}'  # missing label -> ""
    assert json.loads(key.split("|", 1)[1]) == {"model": "m", "zone": "eu"}
    tricky = grouped.incident_key({"model": 'a"|b', "zone": "ü"})
    assert json.loads(tricky.split("|", 1)[1]) == {"model": 'a"|b', "zone": "ü"}


def test_duplicate_or_reserved_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        RunbookSet([rb("x", ['a="1"']), rb("x", ['a="2"'])])
    with pytest.raises(ValueError, match="reserved"):
        RunbookSet([rb(UNMATCHED_RUNBOOK_ID, ['a="1"'])])


def test_document_is_a_private_copy() -> None:
    source: dict[str, Any] = {
        "id": "x",
        "title": "x",
        "match": ['a="1"'],
        "contain": [{"action": "fallback", "enabled": True}],
    }
    runbook = Runbook.from_document(source)
    runbook.document["contain"][0]["enabled"] = False
    assert source["contain"][0]["enabled"] is True
    assert runbook.matchers[0].name == "a"
