"""Every Grafana panel query parses and returns data against a real Prometheus scraping the metric contract.

A real Prometheus 2.42 (with the source recording rules) scrapes a small prometheus_client exporter started
here on a free loopback port; it exports every metric of the metric contract and the receiver's own metrics
with plausible values. Grafana itself is not run (not installed here): its macros are substituted.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.support.realparts import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "grafana/dashboards").glob("*.json"))
MODEL = "fraud"
#: Targets that legitimately return nothing here: no alert is firing in this Prometheus.
MAY_BE_EMPTY = "ALERTS{"


def _targets() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                found.append((dashboard["uid"], panel["title"], target["expr"]))
    return found


def _substitute(expr: str) -> str:
    return expr.replace("$model", MODEL).replace("$__rate_interval", "10s").replace("$__interval", "5s")


class _Exporter:
    """The metric contract for one model with two versions, plus the receiver's metrics, kept moving."""

    def __init__(self) -> None:
        reg = CollectorRegistry()
        lv = ["model", "version"]
        self.duration = Histogram(
            "model_request_duration_seconds", "latency", lv, registry=reg, buckets=(0.05, 0.1, 0.25, 0.5, 1.0)
        )
        self.requests = Counter("model_requests", "requests", [*lv, "outcome"], registry=reg)
        self.score = Histogram(
            "model_prediction_score", "scores", lv, registry=reg, buckets=(0.1, 0.25, 0.5, 0.75, 0.9)
        )
        baseline = Gauge("model_prediction_baseline", "baseline", [*lv, "stat"], registry=reg)
        self.psi = Gauge("model_feature_psi", "psi", [*lv, "feature"], registry=reg)
        self.problems = Counter("model_input_problems", "problems", [*lv, "feature", "kind"], registry=reg)
        auc = Gauge("model_auc", "auc", lv, registry=reg)
        auc_base = Gauge("model_auc_baseline", "auc baseline", lv, registry=reg)
        self.labeled = Counter("model_labeled_samples", "labels", lv, registry=reg)
        self.outputs = Counter("model_outputs", "outputs", lv, registry=reg)
        self.toxic = Counter("model_toxic_outputs", "toxic", lv, registry=reg)
        guard = Gauge("model_guardrail_level", "guardrail", lv, registry=reg)
        tools = Gauge("model_tools_blocked", "tools blocked", lv, registry=reg)
        self.tool_calls = Counter("model_tool_calls", "tool calls", [*lv, "tool", "outcome"], registry=reg)
        serving = Gauge("model_serving_info", "serving", [*lv, "mode", "role"], registry=reg)
        weight = Gauge("model_traffic_weight", "weight", lv, registry=reg)
        slo_lat = Gauge("model_slo_latency_seconds", "slo", lv, registry=reg)
        slo_err = Gauge("model_slo_error_ratio", "slo", lv, registry=reg)
        self.notifications = Counter("receiver_notifications", "n", ["outcome"], registry=reg)
        self.lag = Histogram("receiver_processing_lag_seconds", "lag", registry=reg)
        Gauge("receiver_incidents", "i", ["state", "severity"], registry=reg).labels("open", "SEV2").set(1)
        Gauge("receiver_queue_depth", "q", registry=reg).set(0)
        self.actions = Counter("receiver_actions", "a", ["kind", "result"], registry=reg)
        Gauge("receiver_outbox_pending", "o", registry=reg).set(2)
        for version, w in (("v1", 50), ("v2", 50)):
            for stat, value in (("mean", 0.3), ("stddev", 0.1), ("positive_rate", 0.2)):
                baseline.labels(MODEL, version, stat).set(value)
            auc.labels(MODEL, version).set(0.8)
            auc_base.labels(MODEL, version).set(0.85)
            guard.labels(MODEL, version).set(1)
            tools.labels(MODEL, version).set(1)
            serving.labels(MODEL, version, "normal", "active" if version == "v2" else "split").set(1)
            weight.labels(MODEL, version).set(w)
            slo_lat.labels(MODEL, version).set(0.25)
            slo_err.labels(MODEL, version).set(0.001)
        self.registry = reg
        self.port = free_port()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._server, self._server_thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )
        self._thread.start()

    def _run(self) -> None:
        rnd = random.Random(5)
        while not self._stop.wait(0.05):
            for version in ("v1", "v2"):
                self.duration.labels(MODEL, version).observe(rnd.uniform(0.01, 0.4))
                self.requests.labels(MODEL, version, "error" if rnd.random() < 0.05 else "ok").inc()
                self.score.labels(MODEL, version).observe(rnd.random())
                self.psi.labels(MODEL, version, "age").set(rnd.uniform(0, 0.3))
                kind = rnd.choice(["null", "out_of_range", "schema"])
                self.problems.labels(MODEL, version, "age", kind).inc()
                self.labeled.labels(MODEL, version).inc()
                self.outputs.labels(MODEL, version).inc()
                if rnd.random() < 0.1:
                    self.toxic.labels(MODEL, version).inc()
                self.tool_calls.labels(MODEL, version, "web_browse", "refused").inc()
            self.notifications.labels("accepted").inc()
            self.lag.observe(rnd.uniform(0.001, 0.2))
            self.actions.labels("traffic_split", "ok").inc()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()


@pytest.fixture
def exporter() -> Iterator[_Exporter]:
    exp = _Exporter()
    exp.start()
    yield exp
    exp.stop()


@pytest.fixture
def prometheus(prometheus_factory: Any, exporter: _Exporter) -> Any:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["recording.yml"],
        "scrape_configs": [
            {
                "job_name": "model-server",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
            }
        ],
    }
    rules = (REPO / "alert_rules/recording.yml").read_text()
    prom = prometheus_factory(config, rule_files={"recording.yml": rules})

    def recorded() -> bool:
        result = _query(prom.url, "model:model_request_duration_seconds:slow_ratio_rate30m")
        return bool(result["data"]["result"])

    wait_until(recorded, timeout=30, interval=0.5, message="recording rules to produce data")
    return prom


def _query(url: str, expr: str) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(url + "/api/v1/query", params={"query": expr}, timeout=10).json()
    return body


def test_dashboards_have_stable_uids_and_the_provisioned_datasource() -> None:
    uids = {json.loads(p.read_text())["uid"] for p in DASHBOARDS}
    assert uids == {"model-health", "incident-response"}
    datasource = yaml.safe_load((REPO / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "prometheus"
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "prometheus", panel["title"]
            assert panel["targets"], f"{panel['title']} has no query"
    health = json.loads((REPO / "grafana/dashboards/model-health.json").read_text())
    variable = health["templating"]["list"][0]
    assert variable["name"] == "model"
    assert variable["query"]["query"] == "label_values(model_requests_total, model)"


def test_every_panel_query_parses_and_returns_data(prometheus: Any) -> None:
    problems = []
    for uid, title, expr in _targets():
        result = _query(prometheus.url, _substitute(expr))
        if result.get("status") != "success":
            problems.append(f"{uid} / {title}: {expr!r} -> {result.get('error')}")
        elif not result["data"]["result"] and MAY_BE_EMPTY not in expr:
            problems.append(f"{uid} / {title}: {expr!r} returned no data")
    assert not problems, "\n".join(problems)


def test_model_variable_lists_the_exported_model(prometheus: Any) -> None:
    values = requests.get(
        prometheus.url + "/api/v1/label/model/values", params={"match[]": "model_requests_total"}, timeout=10
    ).json()
    assert values["data"] == [MODEL]
