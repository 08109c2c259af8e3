"""Concurrency: the same notification from 8 threads at once, and two receivers sharing one database."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import requests

from tests.support.payloads import alert, notification, write_runbooks
from tests.support.realparts import wait_until
from tests.support.receiver_server import WEBHOOK_TOKEN, make_settings, start_receiver

HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}


def burst(urls: list[str], body: bytes, per_url: int) -> list[int]:
    barrier = threading.Barrier(len(urls) * per_url)
    statuses: list[int] = []
    lock = threading.Lock()

    def send(url: str) -> None:
        barrier.wait(5)
        status = requests.post(url + "/api/v1/alerts", data=body, headers=HOOK, timeout=10).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send, args=(url,)) for url in urls for _ in range(per_url)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    return statuses


def test_same_notification_from_8_threads_yields_one_incident(tmp_path: Path) -> None:
    running = start_receiver(make_settings(tmp_path / "data", write_runbooks(tmp_path / "rb")))
    try:
        body = json.dumps(notification(alert(feature="a"), alert(feature="b"))).encode()
        assert burst([running.url], body, 8) == [200] * 8
        store = running.context.store
        wait_until(lambda: store.pending_count() == 0, timeout=10, message="queue drained")
        (incident,) = store.list_incidents()
        kinds = [e.kind for e in store.get_incident(incident.id).timeline]
        assert kinds == ["opened", "severity", "alert_firing", "alert_firing"]
    finally:
        running.stop()


def test_two_receivers_on_one_database_open_one_incident(tmp_path: Path) -> None:
    runbooks = write_runbooks(tmp_path / "rb")
    first = start_receiver(make_settings(tmp_path / "data", runbooks))
    second = start_receiver(make_settings(tmp_path / "data", runbooks))
    try:
        body = json.dumps(notification(alert(feature="a"), alert(model="fraud"))).encode()
        assert burst([first.url, second.url], body, 4) == [200] * 8
        store = first.context.store
        wait_until(lambda: store.pending_count() == 0, timeout=10, message="queue drained")
        incidents = store.list_incidents()
        assert sorted(i.model or "" for i in incidents) == ["churn", "fraud"]
        for incident in incidents:
            kinds = [e.kind for e in store.get_incident(incident.id).timeline]
            assert kinds.count("opened") == 1 and kinds.count("alert_firing") == 1
    finally:
        first.stop()
        second.stop()


def test_a_web_only_receiver_leaves_the_work_to_one_running_the_worker_on_the_same_database(
    tmp_path: Path,
) -> None:
    runbooks = write_runbooks(tmp_path / "rb")
    web = start_receiver(make_settings(tmp_path / "data", runbooks, run_worker=False, replica="web"))
    worker = None
    try:
        assert web.context.worker is None and web.context.response is not None  # built, never started
        body = json.dumps(notification(alert(feature="a"), alert(model="fraud"))).encode()
        assert burst([web.url], body, 4) == [200] * 4
        store = web.context.store
        assert store.pending_count() == 4 and store.list_incidents() == []  # all committed, none applied
        worker = start_receiver(make_settings(tmp_path / "data", runbooks, replica="w1"))
        wait_until(lambda: store.pending_count() == 0, timeout=10, message="the worker to drain the queue")
        assert sorted(i.model or "" for i in store.list_incidents()) == ["churn", "fraud"]
    finally:
        web.stop()
        if worker is not None:
            worker.stop()
