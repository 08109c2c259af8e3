"""The demo model server following a real MLflow Model Registry (the session's ``mlflow server``): it loads
versions through MLflow (``models:/NAME/VERSION``, the sklearn flavour), follows a split and a rollback
within two poll intervals, keeps fault injection, and serves a version logged by a plain MLflow user (no
baseline: no PSI, one warning, no crash)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests

from model_registry import open_registry
from model_server.demo import bootstrap
from model_server.server import ServerConfig
from model_server.web import serve_background
from tests.integration.test_model_server import post_all, rows
from tests.support.realparts import wait_until

MODEL = "cancer"
TOKEN = "admin-tok"
POLL = 0.2


def versions_served(url: str, n: int = 60) -> set[str]:
    return {r.json()["version"] for r in post_all(url, rows(n))}


def test_follows_mlflow_split_rollback_and_keeps_faults(mlflow_url, tmp_path):
    pytest.importorskip("mlflow")
    bootstrap(mlflow_url, MODEL, tmp_path / "artifacts")
    reg = open_registry(mlflow_url)
    server = serve_background(ServerConfig(mlflow_url, MODEL, port=0, admin_token=TOKEN, poll_interval=POLL))
    try:
        state = requests.get(server.url + "/state", timeout=5).json()
        assert state["active_version"] == "v1" and state["loaded_versions"] == ["v1"]
        assert versions_served(server.url, 20) == {"v1"}
        reg.promote(MODEL, "v2", actor="t", reason="release")
        reg.split(MODEL, {"v1": 50, "v2": 50}, actor="t", reason="INC canary")
        started = time.monotonic()
        wait_until(
            lambda: (
                requests.get(server.url + "/state", timeout=2).json()["traffic"] == {"v1": 50.0, "v2": 50.0}
            ),
            timeout=10,
            interval=0.02,
            message="split followed",
        )
        assert time.monotonic() - started <= 2 * POLL + 1.0  # at most ~two poll intervals (+ model load)
        assert versions_served(server.url) == {"v1", "v2"}  # a traffic split across two versions
        faults = requests.post(
            server.url + "/admin/faults",
            json={"error_rate": 1.0, "version": "v2"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert faults.status_code == 200
        codes = {r.status_code for r in post_all(server.url, rows(40))}
        assert codes == {200, 500}
        reg.rollback(MODEL, actor="receiver", reason="INC-1 errors", expected_active="v2")
        wait_until(
            lambda: requests.get(server.url + "/state", timeout=2).json()["traffic"] == {"v1": 100.0},
            timeout=10,
            interval=0.02,
            message="rollback followed",
        )
        assert {r.status_code for r in post_all(server.url, rows(20))} == {200}
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        assert "model_feature_psi{" in metrics or "model_prediction_baseline{" in metrics
    finally:
        server.stop()


def test_serves_a_plain_mlflow_version_without_baseline(mlflow_url, caplog):
    mlflow = pytest.importorskip("mlflow")
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(mlflow_url.removeprefix("mlflow+"))
    estimator = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.8, 0.1]], [0, 1, 0, 1])
    with mlflow.start_run():
        mlflow.sklearn.log_model(estimator, name="model", registered_model_name="plain")
    mlflow.MlflowClient().set_registered_model_alias("plain", "champion", "1")
    caplog.set_level(logging.WARNING, logger="model_server")
    server = serve_background(ServerConfig(mlflow_url, "plain", port=0, poll_interval=POLL))
    try:
        body: dict[str, Any] = requests.post(
            server.url + "/predict", json={"features": {"f0": 0.9, "f1": 0.1}}, timeout=5
        ).json()
        assert body["version"] == "1" and 0.5 < body["score"] <= 1.0
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        assert "model_feature_psi{" not in metrics and "model_prediction_baseline{" not in metrics
        assert 'model_requests_total{model="plain",outcome="ok",version="1"}' in metrics
    finally:
        server.stop()
    warnings = [r.getMessage() for r in caplog.records if "no baseline" in r.getMessage()]
    assert len(warnings) == 1 and "plain version 1" in warnings[0]
