"""The traffic generator against a real demo server: labels join, drift moves one feature's PSI, bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from model_server.demo import bootstrap
from model_server.server import ServerConfig
from model_server.traffic import TrafficConfig, TrafficError, run_traffic
from model_server.web import BackgroundServer, serve_background

MODEL = "cancer"
BIN = Path(sys.executable).parent


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackgroundServer]:
    db = tmp_path / "registry.db"
    bootstrap(db, MODEL, tmp_path / "artifacts")
    running = serve_background(ServerConfig(str(db), MODEL, port=0, poll_interval=0.2))
    try:
        yield running
    finally:
        running.stop()


def metric(url: str, name: str, key: str) -> dict[str, float]:
    text = requests.get(url + "/metrics", timeout=5).text
    return {
        s.labels.get(key, ""): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    }


def test_labels_after_a_delay_feed_online_auc(server: BackgroundServer) -> None:
    config = TrafficConfig(url=server.url, rate=300, count=200, label_delay=0.3, label_fraction=0.5)
    report = run_traffic(config)
    assert report.ok == 200 and report.sent == 200 and report.versions == {"v1": 200}
    assert 60 < report.labels_sent < 140 and report.labels_failed == 0
    assert metric(server.url, "model_labeled_samples_total", "version") == {"v1": report.labels_sent}
    auc = metric(server.url, "model_auc", "version")["v1"]
    assert auc > 0.95  # v1 is the good model


def test_drift_moves_only_the_chosen_feature(server: BackgroundServer) -> None:
    run_traffic(TrafficConfig(url=server.url, rate=2000, count=1000, drift={"worst_area": 3.0}))
    psi = metric(server.url, "model_feature_psi", "feature")
    assert len(psi) == 30
    assert psi["worst_area"] > 0.5
    assert max(v for f, v in psi.items() if f != "worst_area") < 0.1


def test_text_mode_counts_outputs(server: BackgroundServer) -> None:
    report = run_traffic(TrafficConfig(url=server.url, rate=200, count=30, text=True))
    assert report.ok == 30
    assert metric(server.url, "model_outputs_total", "version") == {"v1": 30.0}


def test_duration_bounds_the_run(server: BackgroundServer) -> None:
    report = run_traffic(TrafficConfig(url=server.url, rate=20, duration=0.5))
    assert 5 <= report.sent <= 11 and report.elapsed_seconds < 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (TrafficConfig(), "unbounded"),
        (TrafficConfig(url="http://10.1.2.3:80", count=1), "not a loopback"),
        (TrafficConfig(count=1, rate=0), "rate"),
        (TrafficConfig(count=1, label_fraction=2), "label_fraction"),
    ],
)
def test_bad_configs_are_refused(config: TrafficConfig, message: str) -> None:
    with pytest.raises(TrafficError, match=message):
        run_traffic(config)


def test_unknown_drift_feature_is_named() -> None:
    with pytest.raises(TrafficError, match="nope"):
        run_traffic(TrafficConfig(count=1, drift={"nope": 1.0}))


def test_cli(server: BackgroundServer) -> None:
    done = subprocess.run(
        [
            str(BIN / "model-traffic"),
            "--url",
            server.url,
            "--count",
            "5",
            "--rate",
            "50",
            "--drift",
            "mean_radius=1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] == 5
    refused = subprocess.run(
        [str(BIN / "model-traffic"), "--url", "http://example.com:80"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "unbounded" in refused.stderr and "not a loopback" in refused.stderr
