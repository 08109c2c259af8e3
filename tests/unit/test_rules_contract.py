"""Every alert rule honours the alert contract (shared/DESIGN.md), and every incident type is covered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INCIDENT_TYPES = {
    "latency",
    "errors",
    "drift",
    "prediction_shift",
    "auc_drop",
    "toxicity",
    "data_quality",
    "availability",
}
ANNOTATIONS = {"summary", "description", "value", "threshold", "runbook_url", "dashboard_url"}


def _rules(rel: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load((REPO / rel).read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


ALERTS = [r for r in _rules("alert_rules/model_alerts.yml") if "alert" in r]


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_carries_the_contract(rule: dict[str, Any]) -> None:
    labels, annotations = rule["labels"], rule["annotations"]
    assert labels["incident_type"] in INCIDENT_TYPES
    assert labels["severity"] in {"page", "ticket"}
    assert set(annotations) == ANNOTATIONS
    assert annotations["value"] == "{{ $value }}"
    assert not any("$value" in str(v) for v in labels.values()), "never template $value into a label"
    assert annotations["runbook_url"].endswith("/" + labels["incident_type"])
    assert "var-model={{ $labels.model }}" in annotations["dashboard_url"]
    assert "for" in rule, "every alert needs a for: to ride out blips"


ENGINE_ALERTS = [r for r in _rules("alert_rules/engine_alerts.yml") if "alert" in r]


@pytest.mark.parametrize("rule", ENGINE_ALERTS, ids=lambda r: r["alert"])
def test_engine_alerts_page_around_the_engine(rule: dict[str, Any]) -> None:
    # no model and no incident_type: they must never match a runbook nor be mistaken for a model's incident
    assert rule["labels"]["component"] == "runbook-engine" and set(rule["labels"]) == {
        "component",
        "severity",
    }
    assert rule["labels"]["severity"] in {"page", "ticket"} and rule["alert"].startswith("RunbookEngine")
    assert {"summary", "description", "value", "runbook_url", "dashboard_url"} <= set(rule["annotations"])
    assert not rule["annotations"]["runbook_url"].startswith("http://receiver"), "the engine may be down"
    assert "for" in rule


def test_the_engine_alerts_route_to_the_pager_not_the_webhook() -> None:
    manager = yaml.safe_load((REPO / "alertmanager/alertmanager.yml").read_text())
    first = manager["route"]["routes"][0]
    assert first["matchers"] == ['component="runbook-engine"'] and not first.get("continue")
    [oncall] = [r for r in manager["receivers"] if r["name"] == first["receiver"]]
    assert "webhook_configs" not in oncall and oncall["pagerduty_configs"][0]["routing_key_file"]


def test_every_incident_type_has_an_alert() -> None:
    assert {r["labels"]["incident_type"] for r in ALERTS} == INCIDENT_TYPES


def test_stale_labels_alert_is_an_auc_ticket() -> None:
    stale = next(r for r in ALERTS if r["alert"] == "ModelLabelsStale")
    assert stale["labels"] == {"incident_type": "auc_drop", "severity": "ticket"}


def test_recording_rule_names_follow_level_metric_operations() -> None:
    for rule in _rules("alert_rules/recording.yml"):
        assert rule["record"].count(":") == 2, rule["record"]


def test_alerts_only_reference_recorded_or_contract_metrics() -> None:
    recorded = {r["record"] for r in _rules("alert_rules/recording.yml")}
    for rule in ALERTS:
        for token in rule["expr"].replace("(", " ").replace(")", " ").split():
            name = token.split("{")[0]
            if name.count(":") == 2:
                assert name in recorded, f"{rule['alert']} uses unknown recording rule {name}"


def test_stack_prometheus_config_points_at_the_source_rules_and_alertmanager() -> None:
    config = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == [
        "/etc/prometheus/rules/recording.yml",
        "/etc/prometheus/rules/model_alerts.yml",
        "/etc/prometheus/rules/engine_alerts.yml",
    ]
    # the HA pair: every alert goes to both peers
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093",
        "alertmanager-2:9093",
    ]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"prometheus", "receiver", "model-server"} <= set(jobs)
    assert jobs["model-server"]["honor_labels"] is True
