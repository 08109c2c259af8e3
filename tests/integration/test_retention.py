"""Retention on SQLite and PostgreSQL 15: old bodies and closed incidents go, summaries and reviews stay.

"Two replicas" are two store objects on one database, as two receiver processes hold them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.errors import ConfigError
from receiver.response_runtime import build_response_runtime
from receiver.retention import Retention, RetentionWorker
from receiver.review import render_review
from receiver.runbooks import load_runbooks
from receiver.store import SqlStore, open_database_store, open_store
from receiver.store.base import ReviewToArchive
from tests.support.incident_history import DAY, FakeClock, make_incident, notification_body
from tests.support.payloads import write_runbooks
from tests.support.realparts import wait_until
from tests.support.receiver_server import make_settings

pytestmark = pytest.mark.timeout(180)

PAST = 1_800_000_000.0
NOW = PAST + 100 * DAY


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., SqlStore]]:
    """``opener(clock)`` opens another store ("replica") on the same database."""
    opened: list[SqlStore] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None

    def open_one(clock: Callable[[], float]) -> SqlStore:
        store = open_database_store(url, clock=clock) if url else open_store(tmp_path / "data", clock=clock)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _body_length(store: SqlStore, table: str, row_id: int) -> int:
    with store.db.read() as tx:
        return int(tx.execute(f"SELECT length(body) FROM {table} WHERE id = ?", (row_id,)).fetchone()[0])


def _count(store: SqlStore, sql: str, *params: Any) -> int:
    with store.db.read() as tx:
        return int(tx.execute(sql, params).fetchone()[0])


def _rows_of(store: SqlStore, incident_id: int) -> dict[str, int]:
    key = str(incident_id)
    return {
        "timeline": _count(store, "SELECT COUNT(*) FROM timeline WHERE incident_id = ?", incident_id),
        "incident_alerts": _count(
            store, "SELECT COUNT(*) FROM incident_alerts WHERE incident_id = ?", incident_id
        ),
        "timers": _count(store, "SELECT COUNT(*) FROM timers WHERE incident_id = ?", incident_id),
        "outbox": _count(store, "SELECT COUNT(*) FROM outbox WHERE incident_id = ?", key),
        "action_ledger": _count(store, "SELECT COUNT(*) FROM action_ledger WHERE incident_id = ?", key),
    }


def test_prune_keeps_summaries_and_reviews_and_removes_bodies_and_timelines(
    opener: Callable[..., SqlStore],
) -> None:
    clock = FakeClock(PAST)
    store = opener(clock)
    old_closed = make_incident(store, clock, "fraud")
    old_open = make_incident(store, clock, "churn", close=False)  # still contained: never pruned
    old_rejected = store.record_rejected(
        status=400,
        reason="invalid",
        problems=["$.alerts: required"],
        content_type="application/json",
        body=b'{"not": "alertmanager"}',
    )
    old_pending = store.record_notification(notification_body("late"), "group-late")  # not processed yet
    clock.now = NOW - 10 * DAY
    recent_closed = make_incident(store, clock, "ranker")
    recent_rejected = store.record_rejected(
        status=400, reason="invalid", problems=[], content_type=None, body=b"{}"
    )
    clock.now = NOW

    review_before = render_review(store.get_incident(old_closed))
    summary_before = store.get_incident(old_closed).incident
    assert all(_rows_of(store, old_closed).values())  # there is something of each kind to prune
    with store.db.read() as tx:
        old_done = [
            int(r[0])
            for r in tx.execute(
                "SELECT id FROM notifications WHERE state = 'done' AND received_ts < ? ORDER BY id",
                (PAST + 1,),
            ).fetchall()
        ]
    assert len(old_done) == 2

    report = Retention(store, 90 * DAY, clock=clock).prune()

    assert (report.incidents, report.rejected, report.complete) == (1, 1, True)
    assert report.notifications == 2  # fraud's and churn's (done); late's is pending, ranker's recent
    detail = store.get_incident(old_closed)
    assert detail.incident == summary_before  # the summary: state, severity, times, title, model
    assert detail.timeline == [] and detail.alerts == []
    assert _rows_of(store, old_closed) == dict.fromkeys(_rows_of(store, old_closed), 0)
    archived = store.retention.archived_review(old_closed)
    assert archived is not None and archived.markdown == review_before
    # the review escapes Markdown in its text: the action reads traffic\_split
    assert "traffic\\_split" in archived.markdown and "closed by alice" in archived.markdown
    for kept in (old_open, recent_closed):
        assert store.retention.archived_review(kept) is None
        assert all(_rows_of(store, kept)[k] for k in ("timeline", "outbox", "action_ledger"))
    # bodies: old processed ones emptied (the rows stay), pending and recent ones untouched
    lengths = {n: _body_length(store, "notifications", n) for n in [*old_done, old_pending]}
    assert [lengths[n] for n in old_done] == [0, 0] and lengths[old_pending] > 0
    assert _count(store, "SELECT COUNT(*) FROM notifications WHERE length(body) > 0") == 2  # late, ranker
    assert _body_length(store, "rejected", old_rejected) == 0
    assert _body_length(store, "rejected", recent_rejected) == 2
    assert [r.id for r in store.list_rejected()] == [recent_rejected, old_rejected]  # rows and reasons kept
    # the alert-transition keys that keep ingest idempotent survive
    assert _count(store, "SELECT COUNT(*) FROM alert_history WHERE fingerprint = 'fp-fraud'") == 1

    again = Retention(store, 90 * DAY, clock=clock).prune()
    assert (again.notifications, again.rejected, again.incidents) == (0, 0, 0)
    assert store.retention.archived_review(old_closed).markdown == review_before  # type: ignore[union-attr]


def test_an_incident_with_work_in_flight_or_a_grown_timeline_is_left_for_a_later_pass(
    opener: Callable[..., SqlStore],
) -> None:
    clock = FakeClock(PAST)
    store = opener(clock)
    incident = make_incident(store, clock, "fraud")
    store.outbox.enqueue(str(incident), "chat", '{"text": "closed"}', "late-message", clock())
    clock.now = NOW
    retention = Retention(store, 90 * DAY, clock=clock)
    assert retention.prune().incidents == 0  # a message still pending: not yet
    [pending] = store.outbox.select(status="pending", incident_id=str(incident))
    store.outbox.mark_delivered(pending.id, 200, clock())

    # a review rendered before the timeline grew is refused, so nothing recorded is lost unreviewed
    detail = store.get_incident(incident)
    stale = ReviewToArchive(incident, render_review(detail), max(e.id for e in detail.timeline))
    store.add_timeline(incident, "note", "a late note")
    assert store.retention.archive_incidents([stale], NOW - 90 * DAY) == []
    assert store.retention.archive_incidents([stale], PAST - DAY) == []  # not closed before that cut-off

    assert retention.prune().incidents == 1
    archived = store.retention.archived_review(incident)
    assert archived is not None and "a late note" in archived.markdown


def test_two_replicas_pruning_at_once_archive_each_incident_once(opener: Callable[..., SqlStore]) -> None:
    clock = FakeClock(PAST)
    first = opener(clock)
    ids = [make_incident(first, clock, f"model-{n}") for n in range(24)]
    for _ in range(40):
        first.record_rejected(status=400, reason="bad", problems=[], content_type=None, body=b"x" * 100)
    reviews = {i: render_review(first.get_incident(i)) for i in ids}
    clock.now = NOW
    second = opener(clock)
    reports: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(store: SqlStore) -> None:
        try:
            barrier.wait(10)
            # small batches, so the two passes interleave on the same rows
            reports.append(Retention(store, 90 * DAY, clock=clock, body_batch=7, incident_batch=5).prune())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sum(r.incidents for r in reports) == len(ids)  # each archived by exactly one replica
    assert sum(r.rejected for r in reports) == 40
    assert sum(r.notifications for r in reports) == len(ids)
    assert first.retention.archived_count() == len(ids)
    for incident_id in ids:
        archived = second.retention.archived_review(incident_id)
        assert archived is not None and archived.markdown == reviews[incident_id]
        assert first.get_incident(incident_id).timeline == []


def test_replicas_take_turns_through_the_lease(opener: Callable[..., SqlStore]) -> None:
    clock = FakeClock(PAST)
    first = opener(clock)
    for n in range(3):
        make_incident(first, clock, f"m{n}")
    clock.now = NOW
    second = opener(clock)
    one = RetentionWorker(Retention(first, 90 * DAY, clock=clock), owner="r1", lease_seconds=60)
    two = RetentionWorker(Retention(second, 90 * DAY, clock=clock), owner="r2", lease_seconds=60)
    assert first.retention.try_lease("retention", "r1", 60) is True  # r1 is mid-pass
    assert two.run_once() is None  # r2 leaves the work to r1
    assert second.retention.archived_count() == 0
    report = one.run_once()
    assert report is not None and report.incidents == 3 and report.complete
    assert two.run_once() is not None  # r1 released the lease at the end of its pass (so did r2)
    assert second.retention.try_lease("retention", "r2", 60) is True  # r2 mid-pass, then it dies
    assert first.retention.try_lease("retention", "r1", 60) is False
    clock.now += 61
    assert first.retention.try_lease("retention", "r1", 60) is True  # a dead holder's lease expires


def test_a_time_budget_stops_a_pass_early_and_the_next_goes_on(opener: Callable[..., SqlStore]) -> None:
    clock = FakeClock(PAST)
    store = opener(clock)
    for n in range(4):
        make_incident(store, clock, f"m{n}")
    clock.now = NOW
    retention = Retention(store, 90 * DAY, clock=clock, incident_batch=1)
    first = retention.prune(budget_seconds=0)
    assert first.complete is False and first.incidents <= 1
    rest = retention.prune()
    assert rest.complete and first.incidents + rest.incidents == 4


def test_ages_under_a_day_are_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    try:
        with pytest.raises(ConfigError, match="at least 1 day"):
            Retention(store, 3600.0)
    finally:
        store.close()


def test_the_worker_thread_prunes_on_its_own(opener: Callable[..., SqlStore]) -> None:
    clock = FakeClock(PAST)
    store = opener(clock)
    ids = [make_incident(store, clock, f"m{n}") for n in range(3)]
    clock.now = NOW
    seen: list[Any] = []
    worker = RetentionWorker(
        Retention(store, 90 * DAY, clock=clock, incident_batch=1),
        owner="r1",
        first_after=0.01,
        interval=0.05,
        slice_seconds=0.0,  # one batch per slice: the pass goes on in later slices
        pause=0.01,
        on_pruned=seen.append,
    )
    worker.start()
    try:
        wait_until(lambda: store.retention.archived_count() == len(ids), timeout=20, message="all archived")
    finally:
        worker.stop()
    assert len(seen) >= len(ids) and any(not r.complete for r in seen)


def test_the_response_side_runs_retention_as_configured(tmp_path: Path) -> None:
    runbooks = load_runbooks(write_runbooks(tmp_path / "runbooks"))
    store = open_store(tmp_path / "data")
    try:
        for days, expected in ((90.0, True), (0.0, False)):
            settings = make_settings(tmp_path / "data", tmp_path / "runbooks", retention_days=days)
            runtime = build_response_runtime(settings, store, runbooks)
            assert (runtime.retention is not None) is expected
            if runtime.retention is not None:
                assert runtime.retention.retention.max_age == days * DAY
        settings = make_settings(tmp_path / "data", tmp_path / "runbooks", retention_days=0.5)
        with pytest.raises(ConfigError, match=r"retention_days.*at least 1 day"):
            build_response_runtime(settings, store, runbooks)
    finally:
        store.close()


def test_on_sqlite_pruned_bodies_give_their_pages_back(tmp_path: Path) -> None:
    """SQLite never merges pages when an update shrinks rows; the store re-inserts them so it does."""
    clock = FakeClock(PAST)
    store = open_store(tmp_path / "data", clock=clock)
    try:
        ids = [store.record_notification(notification_body(f"m{n}") * 2, f"g{n}") for n in range(300)]
        for nid in ids:
            store.apply(nid, lambda writer: [])  # no events: done at once
        with store.db.read() as tx:
            tx.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = "SELECT SUM(pgsize) FROM dbstat WHERE name = 'notifications'"
            before = int(tx.execute(size).fetchone()[0])
        clock.now = NOW
        assert Retention(store, 90 * DAY, clock=clock).prune().notifications == 300
        with store.db.read() as tx:
            tx.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            after = int(tx.execute(size).fetchone()[0])
            assert tx.execute("PRAGMA foreign_key_check").fetchall() == []
            states = tx.execute("SELECT state, COUNT(*) FROM notifications GROUP BY state").fetchall()
        assert after < before / 5, (before, after)
        assert [tuple(r) for r in states] == [("done", 300)]  # every row is still there
    finally:
        store.close()
