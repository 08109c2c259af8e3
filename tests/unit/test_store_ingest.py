"""The webhook's write path on a real SQLite file: group commit under concurrency, and urgent-first writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.store import SQLiteStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = open_store(tmp_path)
    yield opened
    opened.close()


def test_concurrent_notifications_each_get_the_id_of_their_own_committed_body(store: SQLiteStore) -> None:
    got: dict[bytes, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(16)

    def send(worker: int) -> None:
        start.wait(5)
        for n in range(25):
            body = f'{{"worker": {worker}, "n": {n}}}'.encode()
            nid = store.record_notification(body, f"g{worker}")
            with lock:
                got[body] = nid

    threads = [threading.Thread(target=send, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 400 and len(set(got.values())) == 400
    rows = dict(store.connection().execute("SELECT id, body FROM notifications").fetchall())
    assert {bytes(rows[nid]): nid for nid in got.values()} == got  # every id names its own body
    assert store.notification_counts() == {"received": 400}


def test_group_commit_failure_reaches_the_caller_and_commits_nothing(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    ro = SQLiteStore(tmp_path / "receiver.db")
    ro.connection().execute("PRAGMA query_only = ON")
    try:
        with pytest.raises(Exception, match="store cannot record the notification"):
            ro.record_notification(b"{}")
        ro.connection().execute("PRAGMA query_only = OFF")
        assert ro.record_notification(b"{}") == 1  # the failed group left no row and no stuck leader
    finally:
        ro.close()


def test_urgent_writer_overtakes_a_queued_background_writer(store: SQLiteStore) -> None:
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()
    # background writers defer at most this long (default 50 ms): no timing race
    store.sqlite._gate.max_defer = 5.0

    def holder() -> None:
        with store.sqlite.transaction(durable=False):
            holding.set()
            release.wait(5)

    def background() -> None:
        with store.sqlite.transaction(durable=False):
            order.append("background")

    def urgent() -> None:
        store.record_notification(b"{}")
        order.append("urgent")

    first = threading.Thread(target=holder)
    first.start()
    assert holding.wait(5)
    late = threading.Thread(target=background)
    late.start()
    time.sleep(0.05)  # the background writer is queued first...
    hurry = threading.Thread(target=urgent)
    hurry.start()
    time.sleep(0.05)
    release.set()
    for t in (first, late, hurry):
        t.join(5)
    assert order == ["urgent", "background"]  # ...yet the webhook's commit goes first
