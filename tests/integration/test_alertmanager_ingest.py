"""Against a real Alertmanager 0.25: grouping, repeats, resolution, truncation, retries, wrong token.

Alerts are pushed with Alertmanager's own API (``POST /api/v2/alerts``); Alertmanager posts v4 webhooks to
the real receiver (waitress on loopback) with ``http_config.authorization.credentials_file``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from receiver.store import SQLiteStore
from tests.support.payloads import write_runbooks
from tests.support.realparts import RunningProcess, free_port, wait_until
from tests.support.receiver_server import WEBHOOK_TOKEN, RunningReceiver, make_settings, start_receiver


def am_config(url: str, token_file: Path, *, max_alerts: int = 0, repeat: str = "1h") -> dict[str, Any]:
    return {
        "route": {
            "receiver": "rx",
            "group_by": ["model"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": repeat,
        },
        "receivers": [
            {
                "name": "rx",
                "webhook_configs": [
                    {
                        "url": url + "/api/v1/alerts",
                        "send_resolved": True,
                        "max_alerts": max_alerts,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
                        },
                    }
                ],
            }
        ],
    }


def push(am: RunningProcess, *alerts: dict[str, Any]) -> None:
    response = requests.post(am.url + "/api/v2/alerts", json=list(alerts), timeout=5)
    assert response.status_code == 200, response.text


def drift(
    feature: str, *, model: str = "churn", value: str = "0.25", resolved: bool = False
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "labels": {
            "alertname": "FeatureDrift",
            "incident_type": "drift",
            "model": model,
            "feature": feature,
            "severity": "page",
        },
        "annotations": {"summary": f"{feature} drifts", "value": value},
    }
    if resolved:
        item["endsAt"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    return item


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Callable[..., RunningReceiver]]]:
    runbooks = write_runbooks(tmp_path / "rb")
    token_file = tmp_path / "token"
    token_file.write_text(WEBHOOK_TOKEN)
    started: list[RunningReceiver] = []

    def receiver(port: int = 0) -> RunningReceiver:
        running = start_receiver(make_settings(tmp_path / "data", runbooks), port=port)
        started.append(running)
        return running

    yield token_file, receiver
    for running in started:
        running.stop()


def accepted(rx: RunningReceiver) -> int:
    store = rx.context.store
    assert isinstance(store, SQLiteStore)
    counts = store.connection().execute("SELECT COUNT(*) FROM notifications").fetchone()
    return int(counts[0])


def detail(rx: RunningReceiver) -> Any:
    (incident,) = rx.context.store.list_incidents()
    return rx.context.store.get_incident(incident.id)


def test_group_opens_one_incident_repeats_add_nothing_and_resolution_is_exact(setup, alertmanager_factory):
    token_file, receiver = setup
    rx = receiver()
    am = alertmanager_factory(am_config(rx.url, token_file, repeat="2s"))
    push(am, drift("age"), drift("income"), drift("zip"))
    wait_until(
        lambda: rx.context.store.list_incidents() and len(detail(rx).alerts) == 3,
        timeout=15,
        message="one incident with 3 alerts",
    )
    timeline = [e.kind for e in detail(rx).timeline]
    before = accepted(rx)
    push(am, drift("age"), drift("income"), drift("zip"))  # the same alerts again
    wait_until(lambda: accepted(rx) >= before + 2, timeout=15, message="two more flushes")
    wait_until(lambda: rx.context.store.pending_count() == 0, timeout=5, message="processed")
    assert len(rx.context.store.list_incidents()) == 1
    assert [e.kind for e in detail(rx).timeline] == timeline
    # one alert resolves: reflected exactly, incident still open
    push(am, drift("zip", resolved=True))
    wait_until(
        lambda: sorted(a.status for a in detail(rx).alerts) == ["firing", "firing", "resolved"],
        timeout=15,
        message="zip resolved",
    )
    assert detail(rx).incident.state == "open"
    push(am, drift("age", resolved=True), drift("income", resolved=True))
    wait_until(lambda: detail(rx).incident.state == "resolved", timeout=15, message="incident resolved")
    kinds = [e.kind for e in detail(rx).timeline]
    assert kinds.count("alert_resolved") == 3 and kinds.count("resolved") == 1 and kinds.count("opened") == 1


def test_max_alerts_truncation_is_recorded(setup, alertmanager_factory):
    token_file, receiver = setup
    rx = receiver()
    am = alertmanager_factory(am_config(rx.url, token_file, max_alerts=2))
    push(am, *[drift(f"f{i}") for i in range(5)])

    def truncation() -> Any:
        entries = [e for e in detail(rx).timeline if e.kind == "notification_truncated"]
        return entries

    (entry,) = wait_until(truncation, timeout=15, message="truncation on the timeline")
    assert entry.data["truncated_alerts"] == 3
    assert len(detail(rx).alerts) == 2


def test_receiver_down_then_back_gets_the_notification_by_retry(setup, alertmanager_factory):
    token_file, receiver = setup
    port = free_port()
    am = alertmanager_factory(am_config(f"http://127.0.0.1:{port}", token_file))
    push(am, drift("age", model="fraud"))
    time.sleep(2.0)  # group_wait passed: the first delivery attempts hit a closed port
    rx = receiver(port=port)
    wait_until(lambda: rx.context.store.list_incidents(), timeout=20, message="incident after retry")
    assert detail(rx).incident.model == "fraud"


def test_wrong_token_is_refused_and_nothing_stored(setup, alertmanager_factory, tmp_path):
    _token_file, receiver = setup
    rx = receiver()
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    am = alertmanager_factory(am_config(rx.url, wrong))
    push(am, drift("age"))
    metric = rx.context.metrics.notifications.labels("unauthorized")
    wait_until(lambda: metric._value.get() >= 1, timeout=15, message="a refused delivery")
    assert accepted(rx) == 0 and rx.context.store.list_incidents() == []
    assert rx.context.store.list_rejected() == []
