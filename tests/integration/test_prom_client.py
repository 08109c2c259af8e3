"""PrometheusClient and evidence capture against a real Prometheus 2.42 scraping a real exporter.

Error paths use real sockets too: a closed port (connection refused), a listening socket that never
answers (timeout) and the recording HTTP server answering 503 or non-JSON.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from receiver.errors import PrometheusQueryError, PrometheusUnavailable
from receiver.evidence import capture_evidence, promql_escape
from receiver.prom import PrometheusClient
from receiver.runbooks.sections import EvidenceQuery
from tests.support.realparts import PartsVersions, RunningProcess, free_port, start_prometheus, wait_until

pytestmark = pytest.mark.timeout(60)

TRICKY_MODEL = 'fraud"} or vector(1) #\\'


class Exporter:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.psi = Gauge("demo_feature_psi", "PSI", ["model", "feature"], registry=self.registry)
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    exp.psi.labels(model="fraud", feature="amount").set(0.31)
    exp.psi.labels(model="fraud", feature="country").set(0.05)
    exp.psi.labels(model=TRICKY_MODEL, feature="amount").set(0.77)
    yield exp
    exp.stop()


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, exporter: Exporter, real_parts: PartsVersions
) -> Iterator[RunningProcess]:
    """One real Prometheus for the module (start-up plus first scrape costs ~5 s)."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "exporter", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}
        ],
    }
    prom = start_prometheus(tmp_path_factory.mktemp("prometheus"), config)
    try:
        client = PrometheusClient(prom.url, timeout=2)
        wait_until(lambda: len(client.query("demo_feature_psi")) == 3, timeout=15, message="first scrape")
        yield prom
    finally:
        prom.stop()


def test_instant_vector_scalar_and_range(prometheus: RunningProcess) -> None:
    client = PrometheusClient(prometheus.url, timeout=2)
    samples = client.query('demo_feature_psi{model="fraud"}')
    by_feature = {s.labels["feature"]: s.value for s in samples}
    assert by_feature == {"amount": pytest.approx(0.31), "country": pytest.approx(0.05)}
    assert all(s.labels["job"] == "exporter" for s in samples)

    scalar = client.query('scalar(max(demo_feature_psi{model="fraud"})) * 2')
    assert len(scalar) == 1 and scalar[0].labels == {} and scalar[0].value == pytest.approx(0.62)

    assert client.query('demo_feature_psi{model="nope"}') == []

    now = time.time()
    series = client.query_range('max(demo_feature_psi{model="fraud"})', now - 5, now, step=1)
    assert len(series) == 1 and series[0].values
    assert all(v == pytest.approx(0.31) for _, v in series[0].values)


def test_bad_query_quotes_prometheus_error(prometheus: RunningProcess) -> None:
    client = PrometheusClient(prometheus.url, timeout=2)
    with pytest.raises(PrometheusQueryError) as info:
        client.query("sum(demo_feature_psi")
    assert "HTTP 400" in info.value.message and "bad_data" in info.value.message
    with pytest.raises(PrometheusQueryError, match="'matrix' result"):
        client.query("demo_feature_psi[1m]")


def test_connection_refused_timeout_5xx_and_bad_json(recording_server: Callable[..., Any]) -> None:
    with pytest.raises(PrometheusUnavailable, match="cannot connect"):
        PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=1).query("up")

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections into the backlog, never answers
    try:
        started = time.monotonic()
        with pytest.raises(PrometheusUnavailable, match=r"timed out after 0\.3s"):
            PrometheusClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3).query("up")
        assert time.monotonic() - started < 3
    finally:
        silent.close()

    down = recording_server(
        status=503, response_body=b'{"status":"error","errorType":"unavailable","error":"x"}'
    )
    with pytest.raises(PrometheusUnavailable, match="HTTP 503: unavailable: x"):
        PrometheusClient(down.url).query("up")

    garbage = recording_server(status=200, response_body=b"<html>proxy login</html>")
    with pytest.raises(PrometheusQueryError, match="not a JSON object"):
        PrometheusClient(garbage.url).query("up")


def test_credentials_in_url_never_reach_messages() -> None:
    client = PrometheusClient(f"http://admin:s3cret@127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(PrometheusUnavailable) as info:
        client.query("up")
    assert "s3cret" not in info.value.message and "s3cret" not in repr(client)


def test_evidence_captures_values_and_escapes_label_values(prometheus: RunningProcess) -> None:
    client = PrometheusClient(prometheus.url, timeout=2)
    specs = [
        EvidenceQuery("max PSI", 'max(demo_feature_psi{model="{{ labels.model }}"})', "psi"),
        EvidenceQuery("PSI by feature", 'demo_feature_psi{model="{{ labels.model }}"}'),
    ]
    snaps = capture_evidence(client, specs, {"labels": {"model": "fraud"}})
    assert [s.name for s in snaps] == ["max PSI", "PSI by feature"]
    assert snaps[0].error is None and snaps[0].value == pytest.approx(0.31)
    assert snaps[0].query == 'max(demo_feature_psi{model="fraud"})'
    assert snaps[0].display() == "0.31 psi"
    assert len(snaps[1].samples) == 2 and snaps[1].value is None
    json.dumps([s.to_json() for s in snaps])  # timeline-ready

    # A label value carrying quotes and PromQL stays one string literal: it matches exactly its own series
    # (0.77) instead of breaking out of the matcher into `or vector(1)`.
    tricky = capture_evidence(client, specs[:1], {"labels": {"model": TRICKY_MODEL}})
    assert tricky[0].error is None, tricky[0].error
    assert tricky[0].value == pytest.approx(0.77)
    assert promql_escape(TRICKY_MODEL) in tricky[0].query


def test_evidence_with_prometheus_down_never_raises() -> None:
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    specs = [
        EvidenceQuery("max PSI", 'max(x{model="{{ labels.model }}"})'),
        EvidenceQuery("broken", "{{ labels.missing }}"),
    ]
    snaps = capture_evidence(client, specs, {"labels": {"model": "fraud"}})
    assert snaps[0].error is not None and snaps[0].error.startswith("evidence unavailable: cannot connect")
    assert snaps[0].display() == snaps[0].error
    assert snaps[1].error is not None and snaps[1].error.startswith("evidence query invalid:")
    assert "missing" in snaps[1].error
