"""The worker on a real store and pipeline: it yields to requests in flight, but never stops."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.pipeline import Pipeline
from receiver.runbooks import load_runbooks
from receiver.store import SQLiteStore, open_store
from receiver.worker import Worker
from tests.support.payloads import alert, notification, write_runbooks
from tests.support.realparts import wait_until


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = open_store(tmp_path / "data")
    yield opened
    opened.close()


def _worker(store: SQLiteStore, tmp_path: Path, **kwargs: Any) -> Worker:
    pipeline = Pipeline(store, load_runbooks(write_runbooks(tmp_path / "rb")))
    return Worker(pipeline, poll_interval=0.05, **kwargs)


def test_worker_waits_for_a_gap_between_requests_then_catches_up(store: SQLiteStore, tmp_path: Path) -> None:
    worker = _worker(store, tmp_path, max_yield=0.3, min_slice=0.001)
    store.record_notification(json.dumps(notification(alert(feature="a"))).encode())
    try:
        with worker.foreground.active():
            worker.start()
            time.sleep(0.15)
            assert store.notification_counts() == {"received": 1}  # held back: a request is in flight
        wait_until(lambda: store.pending_count() == 0, timeout=5, message="worker catches up after the gap")
    finally:
        worker.stop()


def test_worker_makes_progress_under_a_constant_flood_of_requests(store: SQLiteStore, tmp_path: Path) -> None:
    worker = _worker(store, tmp_path, max_yield=0.02, min_slice=0.001)
    for n in range(3):
        store.record_notification(json.dumps(notification(alert(feature=f"f{n}"))).encode())
    with worker.foreground.active():  # never a gap
        worker.start()
        try:
            wait_until(lambda: store.pending_count() == 0, timeout=5, message="worker slices under flood")
        finally:
            worker.stop()


def test_a_remote_burst_is_waited_out_until_it_pauses_but_a_local_commit_goes_at_once(
    store: SQLiteStore, tmp_path: Path
) -> None:
    pipeline = Pipeline(store, load_runbooks(write_runbooks(tmp_path / "rb")))
    worker = Worker(pipeline, poll_interval=30, remote_quiet=0.3, max_remote_wait=5)
    worker.start()
    try:
        time.sleep(0.2)  # its first pass found nothing; now it waits for a signal (or 30 s)
        store.record_notification(json.dumps(notification(alert(feature="a"))).encode())
        started = time.monotonic()
        for _ in range(5):  # another process's commits keep signalling for ~0.5 s
            worker.notify_remote()
            time.sleep(0.1)
        assert store.pending_count() == 1, "applied while the remote burst was still going"
        wait_until(lambda: store.pending_count() == 0, timeout=3, message="applied once the burst paused")
        assert time.monotonic() - started >= 0.7  # the burst (~0.4 s after the first) + 0.3 s quiet
        time.sleep(0.2)
        store.record_notification(json.dumps(notification(alert(feature="b"))).encode())
        worker.notify_remote()  # the echo of a local commit: the local signal wins
        worker.notify()
        local = time.monotonic()
        wait_until(lambda: store.pending_count() == 0, timeout=3, interval=0.01, message="local at once")
        assert time.monotonic() - local < 0.25
    finally:
        worker.stop()


def test_a_response_that_meets_an_unavailable_database_is_retried_without_using_an_attempt(
    tmp_path: Path,
) -> None:
    from receiver.errors import StoreUnavailable

    now = [1_800_000_000.0]
    store = open_store(tmp_path / "clocked", clock=lambda: now[0])
    calls: list[int] = []

    class FlakyResponder:
        def handle(self, events: object) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise StoreUnavailable("store cannot write: connection lost")

    try:
        pipeline = Pipeline(
            store, load_runbooks(write_runbooks(tmp_path / "rb")), FlakyResponder(), lease_seconds=15
        )
        store.record_notification(json.dumps(notification(alert())).encode(), "g")
        assert pipeline.apply_next()
        with pytest.raises(StoreUnavailable):
            pipeline.respond_next()
        assert store.claim_applied(15) is None  # still leased by the failed attempt
        now[0] += 16  # the lease runs out
        assert pipeline.respond_next() and calls == [1, 1]
        assert store.pending_count() == 0
        assert store.notification_counts() == {"done": 1}
    finally:
        store.close()
