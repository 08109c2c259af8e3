"""Verification against a real Prometheus scraping a real exporter whose gauge the test changes.

Pass, fail and time-out paths, each driven the way the orchestrator drives it: check_condition() every
250 ms, fed to VerificationState.observe() with wall-clock time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from receiver.prom import PrometheusClient
from receiver.verification import Outcome, Unknown, VerificationState, check_condition
from tests.support.realparts import PartsVersions, RunningProcess, free_port, start_prometheus, wait_until

pytestmark = pytest.mark.timeout(90)

VERIFY = 'max(demo_feature_psi{model="{{ labels.model }}"}) < 0.2'


class Exporter:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.psi = Gauge("demo_feature_psi", "PSI", ["model"], registry=self.registry)
        self.port = free_port()
        self.server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _config(port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    yield exp
    exp.stop()


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, exporter: Exporter, real_parts: PartsVersions
) -> Iterator[RunningProcess]:
    exporter.psi.labels(model="warmup").set(0)
    prom = start_prometheus(tmp_path_factory.mktemp("prometheus"), _config(exporter.port))
    try:
        client = PrometheusClient(prom.url, timeout=2)
        wait_until(
            lambda: client.query('demo_feature_psi{model="warmup"}'), timeout=15, message="first scrape"
        )
        yield prom
    finally:
        prom.stop()


def drive(
    client: PrometheusClient, model: str, for_s: float, timeout_s: float, outcomes: list[Outcome]
) -> VerificationState:
    state = VerificationState.start(time.time(), for_s, timeout_s)
    while not state.done:
        outcome = check_condition(client, VERIFY, {"labels": {"model": model}})
        outcomes.append(outcome)
        state = state.observe(time.time(), outcome)
        time.sleep(0.25)
    return state


def _wait_scraped(client: PrometheusClient, model: str, value: float) -> None:
    wait_until(
        lambda: any(
            abs(s.value - value) < 1e-9 for s in client.query(f'demo_feature_psi{{model="{model}"}}')
        ),
        timeout=10,
        message=f"{model}={value} scraped",
    )


def test_passes_once_psi_stays_low_for_the_duration(prometheus: RunningProcess, exporter: Exporter) -> None:
    client = PrometheusClient(prometheus.url, timeout=2)
    exporter.psi.labels(model="recovering").set(0.45)
    _wait_scraped(client, "recovering", 0.45)
    timer = threading.Timer(1.0, lambda: exporter.psi.labels(model="recovering").set(0.08))
    timer.start()
    outcomes: list[Outcome] = []
    try:
        started = time.time()
        state = drive(client, "recovering", for_s=2, timeout_s=20, outcomes=outcomes)
    finally:
        timer.cancel()
    assert state.status == "passed", state.reason
    assert outcomes[0] is False and outcomes[-1] is True
    assert state.finished_at is not None and state.finished_at - started >= 3.0  # 1 s false + 2 s held


def test_fails_when_psi_stays_high(prometheus: RunningProcess, exporter: Exporter) -> None:
    client = PrometheusClient(prometheus.url, timeout=2)
    exporter.psi.labels(model="stuck").set(0.5)
    _wait_scraped(client, "stuck", 0.5)
    outcomes: list[Outcome] = []
    state = drive(client, "stuck", for_s=1, timeout_s=3, outcomes=outcomes)
    assert state.status == "failed"
    assert "still false at the 3s deadline" in state.reason
    assert set(outcomes) == {False}


def test_times_out_when_prometheus_goes_away(prometheus_factory: Callable[..., RunningProcess]) -> None:
    exporter = Exporter()
    try:
        exporter.psi.labels(model="lonely").set(0.05)
        prom = prometheus_factory(_config(exporter.port))
        client = PrometheusClient(prom.url, timeout=1)
        _wait_scraped(client, "lonely", 0.05)
        killer = threading.Timer(1.0, prom.kill)
        killer.start()
        outcomes: list[Outcome] = []
        state = drive(client, "lonely", for_s=3, timeout_s=4, outcomes=outcomes)
        killer.cancel()
    finally:
        exporter.stop()
    assert outcomes[0] is True
    assert isinstance(outcomes[-1], Unknown) and "cannot connect" in outcomes[-1].reason
    assert state.status == "timed_out"
    assert "could not evaluate: cannot connect to Prometheus" in state.reason
