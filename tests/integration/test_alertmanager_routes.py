"""alertmanager.yml: amtool-valid, routes by severity and incident type, and inhibits as designed.

Routing is checked with `amtool config routes test`; grouping, bearer auth and inhibition with a real
Alertmanager 0.25 running the generated drill config against a recording webhook sink.
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml

from receiver.rulegen import render_drill_configs
from tests.support.realparts import wait_until

REPO = Path(__file__).resolve().parents[2]
CONFIGS = [REPO / "alertmanager/alertmanager.yml", REPO / "alertmanager/drill/alertmanager.yml"]


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_check_config_clean(path: Path) -> None:
    result = _amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_webhooks_follow_the_contract() -> None:
    config = yaml.safe_load(CONFIGS[0].read_text())
    assert config["route"]["group_by"] == ["model", "incident_type"]
    hooks = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks and all(h["url"] == "http://receiver:8080/api/v1/alerts" for h in hooks)
    assert all(h["send_resolved"] is True and 0 < h["max_alerts"] <= 100 for h in hooks)
    assert all(h["http_config"]["authorization"]["credentials_file"] for h in hooks)


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"severity": "page", "incident_type": "availability"}, "runbook-page-urgent"),
        ({"severity": "page", "incident_type": "errors"}, "runbook-page-urgent"),
        ({"severity": "page", "incident_type": "errors", "cause": "release"}, "runbook-page-urgent"),
        ({"severity": "page", "incident_type": "latency"}, "runbook-page-urgent"),
        ({"severity": "page", "incident_type": "toxicity"}, "runbook-page-urgent"),
        ({"severity": "page", "incident_type": "drift"}, "runbook-page"),
        ({"severity": "page", "incident_type": "auc_drop"}, "runbook-page"),
        ({"severity": "page", "incident_type": "data_quality"}, "runbook-page"),
        ({"severity": "ticket", "incident_type": "errors"}, "runbook-ticket"),
        ({"severity": "ticket", "incident_type": "drift"}, "runbook-ticket"),
        ({"incident_type": "drift"}, "runbook-ticket"),  # no severity: still reaches the engine
        # the engine's own alerts page the on-call directly, never through the engine's webhook
        ({"component": "runbook-engine", "severity": "page"}, "runbook-engine-oncall"),
        ({"component": "runbook-engine", "severity": "ticket"}, "runbook-engine-oncall"),
    ],
)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_routes(path: Path, labels: dict[str, str], receiver: str) -> None:
    args = [f"{k}={v}" for k, v in {"model": "fraud", **labels}.items()]
    result = _amtool("config", "routes", "test", f"--config.file={path}", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver, f"{labels} routed to {result.stdout.strip()!r}"


def _alert(**labels: str) -> dict[str, object]:
    name = (
        labels.pop("alertname", "")
        or f"Test{labels['incident_type']}{labels['severity']}{labels.get('cause', '')}"
    )
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": "test"},
        "startsAt": datetime.now(UTC).isoformat(),
    }


def test_grouping_auth_and_inhibition(tmp_path: Path, alertmanager_factory, recording_server) -> None:
    sink = recording_server()
    pager = recording_server(status=202)  # stands in for PagerDuty's Events API v2
    token = tmp_path / "receiver-token"
    token.write_text("drill-token-123\n")
    routing_key = tmp_path / "pager-routing-key"
    routing_key.write_text("0123456789abcdef0123456789abcdef\n")
    paths = render_drill_configs(
        tmp_path / "drill",
        receiver_url=sink.url + "/api/v1/alerts",
        model_server_targets=["127.0.0.1:1"],
        alertmanager_url="http://127.0.0.1:2",
        credentials_file=token,
        pager_url=pager.url + "/v2/enqueue",
        pager_key_file=routing_key,
    )
    am = alertmanager_factory(paths.alertmanager.read_text())
    engine = {"component": "runbook-engine"}
    stuck = _alert(alertname="RunbookEngineOutboxStuck", severity="ticket", **engine)
    assert requests.post(am.url + "/api/v2/alerts", json=[stuck], timeout=5).status_code == 200
    alerts = [
        _alert(model="m1", incident_type="drift", severity="page", feature="age"),
        _alert(model="m1", incident_type="drift", severity="page", feature="income"),
        _alert(model="m1", incident_type="drift", severity="ticket", feature="age"),  # inhibited by the page
        _alert(model="m3", incident_type="availability", severity="page"),
        _alert(model="m3", incident_type="latency", severity="page"),  # inhibited: m3 is down
        # a bad release: the release watch plus the burn-rate and latency pages it trips; one incident
        _alert(model="m2", incident_type="errors", severity="page", cause="release", version="v2"),
        _alert(model="m2", incident_type="errors", severity="page"),  # inhibited: release
        _alert(model="m2", incident_type="latency", severity="page"),  # inhibited: release
        _alert(model="m2", incident_type="drift", severity="page", feature="age"),  # not a release symptom
    ]
    response = requests.post(am.url + "/api/v2/alerts", json=alerts, timeout=5)
    assert response.status_code == 200, response.text
    wait_until(lambda: len(sink.requests) >= 4, timeout=10, message="four webhook notifications")
    time.sleep(3)  # longer than the drill's page group_wait/group_interval: nothing else may arrive

    bodies = sink.bodies()
    groups = {(b["groupLabels"]["model"], b["groupLabels"]["incident_type"]): b for b in bodies}
    assert set(groups) == {("m1", "drift"), ("m3", "availability"), ("m2", "errors"), ("m2", "drift")}
    [release] = groups[("m2", "errors")]["alerts"]
    assert release["labels"]["cause"] == "release" and release["labels"]["version"] == "v2"
    assert groups[("m2", "errors")]["receiver"] == "runbook-page-urgent"
    drift = groups[("m1", "drift")]
    assert drift["receiver"] == "runbook-page"
    assert sorted(a["labels"]["feature"] for a in drift["alerts"]) == ["age", "income"]
    assert {a["labels"]["severity"] for a in drift["alerts"]} == {"page"}
    assert groups[("m3", "availability")]["receiver"] == "runbook-page-urgent"
    assert all(r.path == "/api/v1/alerts" for r in sink.requests)
    assert {r.headers.get("Authorization") for r in sink.requests} == {"Bearer drill-token-123"}

    # the engine's own alerts reached the pager, never the engine's webhook; a ticket is a warning
    [warning] = pager.bodies()
    assert warning["event_action"] == "trigger" and warning["payload"]["severity"] == "warning"
    assert warning["routing_key"] == "0123456789abcdef0123456789abcdef"
    assert "RunbookEngineOutboxStuck" in warning["payload"]["summary"]
    assert all(a["labels"].get("component") is None for b in bodies for a in b["alerts"])
    # no replica up: that page, and nothing more about the backlog it causes (inhibited)
    down = _alert(alertname="RunbookEngineDown", severity="page", **engine)
    backlog = _alert(alertname="RunbookEngineBacklog", severity="page", **engine)
    assert requests.post(am.url + "/api/v2/alerts", json=[down, backlog], timeout=5).status_code == 200
    wait_until(lambda: len(pager.requests) >= 2, timeout=10, message="the engine-down page")
    time.sleep(2)
    critical = [b for b in pager.bodies() if b["payload"]["severity"] == "critical"]
    assert [("RunbookEngineDown" in b["payload"]["summary"]) for b in critical] == [True]
    assert not any("RunbookEngineBacklog" in b["payload"]["summary"] for b in pager.bodies())
    assert len(sink.requests) == len(bodies)
