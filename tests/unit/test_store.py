"""The SQLite store on real files: durable notifications, ordering, retries, rejected bodies, read side."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from receiver.errors import NotFound, StoreError, StoreUnavailable
from receiver.store import SQLiteStore, open_store


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path, rejected_body_cap=16)
    yield opened
    opened.close()


def test_notification_survives_reopen_and_is_pending_in_order(tmp_path: Path) -> None:
    first = open_store(tmp_path)
    ids = [first.record_notification(f'{{"n": {i}}}'.encode(), "g") for i in range(3)]
    first.close()
    second = open_store(tmp_path)
    try:
        assert second.pending_count() == 3
        record = second.next_received()
        assert record is not None and record.id == ids[0] and record.body == b'{"n": 0}'
    finally:
        second.close()


def test_apply_runs_once_even_if_called_twice(store: SQLiteStore) -> None:
    nid = store.record_notification(b"{}")
    calls: list[int] = []

    def fn(writer):
        calls.append(writer.notification_id)
        return [{"kind": "opened"}]

    assert store.apply(nid, fn) == [{"kind": "opened"}]
    assert store.apply(nid, fn) is None
    assert calls == [nid]
    assert store.next_received() is None
    claimed = store.claim_applied()
    assert claimed is not None and claimed.events == [{"kind": "opened"}]
    assert store.claim_applied() is None  # leased
    store.mark_done(nid)
    assert store.pending_count() == 0


def test_apply_failure_rolls_back_everything(store: SQLiteStore) -> None:
    nid = store.record_notification(b"{}")

    def fn(writer):
        writer.create_incident(
            runbook_id="r", incident_key="k", title="t", model=None, group_labels={}, severity="SEV3"
        )
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.apply(nid, fn)
    assert store.list_incidents() == []
    assert store.next_received() is not None


def test_retry_backoff_holds_order_and_dead_letters(store: SQLiteStore) -> None:
    first = store.record_notification(b"1")
    store.record_notification(b"2")
    assert store.mark_retry(first, "boom", delay=60, max_attempts=3) == "received"
    assert store.next_received() is None  # the later one waits behind the retrying one
    assert store.mark_retry(first, "boom", delay=0, max_attempts=3) == "received"
    assert store.mark_retry(first, "boom", delay=0, max_attempts=3) == "failed"
    following = store.next_received()
    assert following is not None and following.body == b"2"


def test_rejected_body_truncated_to_cap(store: SQLiteStore) -> None:
    store.record_rejected(
        status=400, reason="bad", problems=["a: b"], content_type="application/json", body=b"x" * 40
    )
    (item,) = store.list_rejected()
    assert item.body == b"x" * 16 and item.body_size == 40 and item.truncated and item.problems == ["a: b"]


def test_live_incident_key_is_unique(store: SQLiteStore) -> None:
    nid = store.record_notification(b"{}")

    def twice(writer):
        for _ in range(2):
            writer.create_incident(
                runbook_id="r", incident_key="k", title="t", model="m", group_labels={}, severity="SEV3"
            )
        return []

    with pytest.raises(StoreError, match="UNIQUE constraint failed"):
        store.apply(nid, twice)


def test_get_incident_not_found(store: SQLiteStore) -> None:
    with pytest.raises(NotFound, match="incident 42 does not exist"):
        store.get_incident(42)


def test_transaction_serializes_writers_across_threads(store: SQLiteStore) -> None:
    with store.sqlite.transaction() as conn:
        conn.execute("CREATE TABLE counter (n INTEGER)")
        conn.execute("INSERT INTO counter VALUES (0)")

    def bump() -> None:
        for _ in range(20):
            with store.sqlite.transaction() as conn:
                (n,) = conn.execute("SELECT n FROM counter").fetchone()
                conn.execute("UPDATE counter SET n = ?", (n + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert store.connection().execute("SELECT n FROM counter").fetchone()[0] == 80


def test_read_only_database_is_unavailable(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    ro = SQLiteStore(tmp_path / "receiver.db")
    ro.connection().execute("PRAGMA query_only = ON")
    try:
        with pytest.raises(StoreUnavailable, match="store cannot"):
            ro.record_notification(b"{}")
        with pytest.raises(StoreUnavailable):
            ro.check_writable()
    finally:
        ro.close()


def test_worker_queue_queries_use_the_pending_index(store: SQLiteStore) -> None:
    """The worker's per-step reads must not scan the whole notifications table (it only grows)."""
    statements: list[str] = []
    store.connection().set_trace_callback(statements.append)
    store.record_notification(b"{}")
    store.next_received()
    store.claim_applied()
    store.pending_count()
    store.connection().set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "notifications" in s]
    assert len(reads) >= 3
    for sql in reads:
        bound = sql.replace("?", "0")
        plan = " ".join(str(row[3]) for row in store.connection().execute("EXPLAIN QUERY PLAN " + bound))
        assert "SCAN notifications" not in plan, (sql, plan)
