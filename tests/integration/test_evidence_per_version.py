"""The shipped feature-drift runbook's traffic-weight evidence against a real Prometheus scraping two
model-server instances: one figure per version, read as a ratio (issue 14, part 1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from receiver.evidence import capture_evidence
from receiver.prom import PrometheusClient
from receiver.runbooks.sections import EvidenceQuery
from tests.support.realparts import RunningProcess, free_port, start_prometheus, wait_until

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def instances() -> Iterator[list[int]]:
    servers, ports = [], []
    for _ in range(2):  # two replicas of the same model server export the same weights
        registry = CollectorRegistry()
        weight = Gauge("model_traffic_weight", "w", ["model", "version"], registry=registry)
        weight.labels(model="fraud", version="v3").set(0.5)
        weight.labels(model="fraud", version="v4").set(0.5)
        port = free_port()
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append(server)
        ports.append(port)
    yield ports
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prometheus(tmp_path: Path, instances: list[int]) -> Iterator[RunningProcess]:
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "model-server",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in instances]}],
            }
        ],
    }
    prom = start_prometheus(tmp_path, config)
    client = PrometheusClient(prom.url, timeout=2)
    wait_until(lambda: len(client.query("model_traffic_weight")) == 4, timeout=20, message="both scraped")
    yield prom
    prom.stop()


def test_traffic_weight_evidence_is_one_ratio_per_version(prometheus: RunningProcess) -> None:
    runbook = yaml.safe_load((REPO / "runbooks" / "feature-drift.yml").read_text())
    (spec,) = [e for e in runbook["evidence"] if e["name"] == "traffic weight by version"]
    (snap,) = capture_evidence(
        PrometheusClient(prometheus.url, timeout=2),
        [EvidenceQuery.from_mapping(spec)],
        {"labels": {"model": "fraud"}},
    )
    assert snap.error is None
    assert snap.display() == '{version="v3"} 0.5 (50%), {version="v4"} 0.5 (50%)'
