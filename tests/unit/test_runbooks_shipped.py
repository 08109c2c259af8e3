"""The runbooks we ship: they load cleanly, route the alert contract's incident types, and their PromQL
parses (checked by the real ``promtool``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from receiver.actions.kinds import ACTION_KINDS, DURATION_PATTERN
from receiver.runbooks import RunbookSet, SeverityContext, lint_runbooks, load_runbooks
from receiver.runbooks.loader import default_schema_path
from receiver.templating import render

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks"
INCIDENT_TYPES = (
    "latency",
    "errors",
    "drift",
    "prediction_shift",
    "auc_drop",
    "toxicity",
    "data_quality",
    "availability",
)


@pytest.fixture(scope="module")
def shipped() -> RunbookSet:
    return load_runbooks(RUNBOOKS)


def test_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(default_schema_path().read_text())
    Draft202012Validator.check_schema(schema)
    assert default_schema_path() == RUNBOOKS / "runbook.schema.json"
    assert schema["$defs"]["duration"]["pattern"] == DURATION_PATTERN
    assert "priority" in schema["description"] and "more matchers" in schema["description"]


def test_every_shipped_runbook_lints_clean() -> None:
    assert [str(p) for p in lint_runbooks(RUNBOOKS)] == []


def test_one_runbook_per_incident_type(shipped: RunbookSet) -> None:
    for incident_type in INCIDENT_TYPES:
        chosen = shipped.match(
            {"incident_type": incident_type, "model": "churn", "severity": "page", "alertname": "Whatever"}
        )
        assert chosen.id != "unmatched", incident_type
        assert chosen.source is not None and chosen.source.name == f"{chosen.id}.yml"
    assert shipped.match({"incident_type": "drift"}).id == "feature-drift"
    assert shipped.match({"incident_type": "auc_drop", "alertname": "ModelLabelsStale"}).id == "stale-labels"
    assert shipped.match({"incident_type": "auc_drop", "alertname": "ModelAUCDrop"}).id == "auc-drop"
    assert shipped.match({"incident_type": "errors", "cause": "release"}).id == "bad-release"
    assert shipped.match({"incident_type": "errors"}).id == "serving-errors"
    assert shipped.match({"incident_type": "cpu"}).id == "unmatched"


def _steps(runbook_doc: dict[str, Any], phase: str) -> list[str]:
    return [step["action"] for step in runbook_doc[phase]]


def test_containments_fit_the_playbook(shipped: RunbookSet) -> None:
    drift = shipped.get("feature-drift").document
    assert drift["contain"][0] == {
        "id": "split-to-last-known-good",
        "action": "traffic_split",
        "to": "last_known_good",
        "weight": 50,
        "when": 'level in ["SEV1", "SEV2"]',
    }
    assert _steps(drift, "recover") == ["traffic_split"]
    for runbook_id in ("serving-errors", "serving-latency", "bad-release"):
        rollback = shipped.get(runbook_id).document["contain"][0]
        assert rollback["action"] == "rollback" and "max_active_age" in rollback["preconditions"]
    assert _steps(shipped.get("serving-latency").document, "contain") == ["rollback", "page"]
    assert _steps(shipped.get("data-quality").document, "contain") == ["fallback"]
    assert shipped.get("data-quality").document["recover"][0]["enabled"] is False
    assert _steps(shipped.get("toxic-output").document, "contain") == ["guardrail", "page"]
    assert shipped.get("toxic-output").document["recover"][0]["level"] == "restore"
    assert _steps(shipped.get("auc-drop").document, "contain") == ["notify"]
    assert shipped.get("stale-labels").document["contain"] == []
    assert _steps(shipped.get("model-availability").document, "contain") == ["page"]
    assert shipped.get("bad-release").priority > max(r.priority for r in shipped if r.id != "bad-release")
    for runbook in shipped:
        doc = runbook.document
        assert doc["escalate"]["after"] == "30m", runbook.id
        assert doc["comms"]["cadence"] == "30m", runbook.id
        assert doc["evidence"] and doc["verify"]["query"].strip(), runbook.id
        assert set(doc["owners"]) >= {"incident_commander", "ml_owner"}, runbook.id
        for phase in ("contain", "recover"):
            assert all(step["action"] in ACTION_KINDS for step in doc[phase])


def ctx(
    labels: dict[str, str],
    value: float | None,
    firing_count: int = 1,
    annotations: dict[str, str] | None = None,
) -> SeverityContext:
    return SeverityContext(labels, annotations or {}, value, firing_count)


@pytest.mark.parametrize(
    ("runbook_id", "labels", "value", "firing", "annotations", "level"),
    [
        ("toxic-output", {"severity": "page"}, 0.03, 1, {}, "SEV1"),
        ("feature-drift", {"severity": "page"}, 0.25, 1, {}, "SEV2"),
        ("feature-drift", {"severity": "ticket"}, 0.12, 1, {}, "SEV3"),
        ("feature-drift", {"severity": "page"}, 0.6, 1, {}, "SEV1"),
        ("feature-drift", {"severity": "page"}, 0.4, 3, {}, "SEV1"),
        ("serving-errors", {"severity": "page"}, 0.3, 1, {}, "SEV1"),
        ("serving-errors", {"severity": "page"}, 0.02, 1, {}, "SEV2"),
        ("serving-errors", {"severity": "ticket"}, None, 1, {}, "SEV3"),
        ("serving-latency", {"severity": "page"}, 1.6, 1, {"threshold": "0.5"}, "SEV1"),
        ("serving-latency", {"severity": "page"}, 0.7, 1, {"threshold": "0.5"}, "SEV2"),
        ("serving-latency", {"severity": "page"}, 0.7, 1, {"threshold": ""}, "SEV2"),
        ("serving-latency", {"severity": "ticket"}, 0.2, 1, {"threshold": "0.15"}, "SEV3"),
        ("data-quality", {"severity": "page"}, 0.6, 1, {}, "SEV1"),
        ("auc-drop", {"severity": "page"}, 0.06, 1, {}, "SEV3"),
        ("auc-drop", {"severity": "page"}, 0.12, 1, {}, "SEV2"),
        ("model-availability", {"severity": "page"}, 0.0, 2, {}, "SEV1"),
        ("stale-labels", {"severity": "ticket"}, 0.0, 1, {}, "SEV3"),
    ],
)
def test_shipped_severity_tables(
    shipped: RunbookSet,
    runbook_id: str,
    labels: dict[str, str],
    value: float | None,
    firing: int,
    annotations: dict[str, str],
    level: str,
) -> None:
    decision = shipped.get(runbook_id).decide_severity_with_trace(
        ctx({"model": "churn", **labels}, value, firing, annotations)
    )
    assert decision.level == level
    assert decision.errors == ()  # shipped tables guard against a missing value: no timeline noise


def test_shipped_owner_templates_render(shipped: RunbookSet) -> None:
    for runbook in shipped:
        owners, errors = runbook.render_owners({"model": "churn"})
        assert errors == [] and all(owners.values()), runbook.id


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) not installed")
def test_every_query_is_valid_promql(shipped: RunbookSet, tmp_path: Path) -> None:
    context = {"labels": {"model": "churn"}}
    rules = []
    for runbook in shipped:
        queries = [e["query"] for e in runbook.document["evidence"]] + [runbook.document["verify"]["query"]]
        for index, query in enumerate(queries):
            rules.append(
                {"record": f"runbook:{runbook.id.replace('-', '_')}:q{index}", "expr": render(query, context)}
            )
    rule_file = tmp_path / "queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "runbook-queries", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
