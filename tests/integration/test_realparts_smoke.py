"""The real binaries start and answer: a guard that the test machine is set up (scripts/setup.sh)."""

from __future__ import annotations

import requests

from tests.support.realparts import free_port


def test_prometheus_and_alertmanager_start(
    prometheus_factory, alertmanager_factory, recording_server, real_parts
):
    sink = recording_server()
    am = alertmanager_factory(
        {
            "route": {"receiver": "sink"},
            "receivers": [{"name": "sink", "webhook_configs": [{"url": sink.url + "/hook"}]}],
        }
    )
    port = free_port()
    prom = prometheus_factory(
        {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        }
    )
    status = requests.get(am.url + "/api/v2/status", timeout=5).json()
    assert status["versionInfo"]["version"].startswith(real_parts.alertmanager + ".")
    build = requests.get(prom.url + "/api/v1/status/buildinfo", timeout=5).json()
    assert build["data"]["version"].startswith(real_parts.prometheus + ".")
