"""A slow response keeps its notification leased (one renewal thread for all responses), on a real SQLite
store: another replica cannot claim it while it runs, and the lease is released, not extended, at the end."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from receiver.incidents import IncidentEvent
from receiver.pipeline import Pipeline
from receiver.runbooks import load_runbooks
from receiver.store import SQLiteStore, open_store
from tests.support.payloads import alert, notification, write_runbooks


class SlowResponder:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.handled, self.started = seconds, 0, 0
        self.lock = threading.Lock()

    def handle(self, events: Sequence[IncidentEvent]) -> None:
        with self.lock:
            self.started += 1
        time.sleep(self.seconds)
        self.handled += 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = open_store(tmp_path / "data")
    yield opened
    opened.close()


def _record(store: SQLiteStore, model: str) -> int:
    body = notification(alert(model=model), group_key=f'{{}}:{{model="{model}"}}')
    return store.record_notification(json.dumps(body).encode(), f"g-{model}")


def _lease_until(store: SQLiteStore, notification_id: int) -> float:
    with store.db.read() as tx:
        row = tx.execute(
            "SELECT lease_until_ts FROM notifications WHERE id = ?", (notification_id,)
        ).fetchone()
    return float(row[0])


def test_a_response_longer_than_its_lease_is_renewed_and_never_claimed_twice(
    store: SQLiteStore, tmp_path: Path
) -> None:
    runbooks = load_runbooks(write_runbooks(tmp_path / "rb"))
    responder = SlowResponder(2.5)
    pipeline = Pipeline(store, runbooks, responder, lease_seconds=1.0)
    other = Pipeline(store, runbooks, SlowResponder(0), lease_seconds=1.0)  # a second replica
    ids = [_record(store, "a"), _record(store, "b")]
    assert pipeline.apply_next() and pipeline.apply_next()

    threads = [threading.Thread(target=pipeline.respond_next) for _ in ids]  # both slow responses at once
    for t in threads:
        t.start()
    deadline = time.time() + 5
    while responder.started < 2 and time.time() < deadline:  # both claimed (by this replica) and running
        time.sleep(0.01)
    assert responder.started == 2
    deadline = time.time() + 2.0
    while time.time() < deadline:  # twice the lease: only renewals keep both claims
        assert other.store.claim_applied(1.0) is None
        time.sleep(0.1)
    for t in threads:
        t.join(10)

    assert responder.handled == 2
    assert store.notification_counts().get("done") == 2
    time.sleep(0.6)  # a renewal due after the end must not extend a finished claim
    assert all(_lease_until(store, i) == 0 for i in ids)


def test_the_renewal_thread_ends_when_no_response_is_in_flight(store: SQLiteStore, tmp_path: Path) -> None:
    runbooks = load_runbooks(write_runbooks(tmp_path / "rb"))
    pipeline = Pipeline(store, runbooks, SlowResponder(0.3), lease_seconds=0.3)
    _record(store, "c")
    assert pipeline.apply_next() and pipeline.respond_next()
    deadline = time.time() + 5
    while time.time() < deadline and [t for t in threading.enumerate() if t.name == "lease-notifications"]:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "lease-notifications"]
