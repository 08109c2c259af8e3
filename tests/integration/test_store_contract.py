"""One contract for the store protocols, run against SQLite (a file) and PostgreSQL 15 (a real server).

"Two replicas" are two store objects on the same database, as two receiver processes would hold them:
whatever one claims, the other must not, and nothing is written twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.errors import NotFound, StoreError, StoreUnavailable
from receiver.store import SqlStore, open_database_store, open_store
from receiver.store.base import GuardPolicy, LedgerKey
from receiver.store.incidents import InvalidTransition

pytestmark = pytest.mark.timeout(120)


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., SqlStore]]:
    """``opener(clock=...)`` opens another store ("replica") on the same database."""
    opened: list[SqlStore] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None

    def open_one(clock: Callable[[], float] | None = None) -> SqlStore:
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        store = open_database_store(url, **kwargs) if url else open_store(tmp_path / "data", **kwargs)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _writer_opening(runbook: str = "r", key: str = "k") -> Callable[..., list[dict[str, Any]]]:
    def fn(record: Any, writer: Any) -> list[dict[str, Any]]:
        incident = writer.find_live_incident(runbook, key)
        if incident is None:
            incident = writer.create_incident(
                runbook_id=runbook, incident_key=key, title="t", model="m", group_labels={}, severity="SEV3"
            )
            writer.add_timeline(incident.id, "opened", "opened", dedupe_key="opened")
            return [{"kind": "opened", "incident_id": incident.id}]
        return []

    return fn


def test_notifications_are_durable_and_applied_in_order_within_a_group(
    opener: Callable[..., SqlStore],
) -> None:
    store = opener()
    a1 = store.record_notification(b'{"n": 1}', "group-a")
    b1 = store.record_notification(b'{"n": 2}', "group-b")
    a2 = store.record_notification(b'{"n": 3}', "group-a")
    assert store.pending_count() == 3
    seen: list[int] = []

    def fail_a1(record: Any, writer: Any) -> list[dict[str, Any]]:
        if record.id == a1:
            raise ValueError("boom")
        seen.append(record.id)
        return []

    with pytest.raises(ValueError) as raised:
        store.apply_next(fail_a1)
    assert raised.value.record.id == a1  # type: ignore[attr-defined]
    assert store.mark_retry(a1, "boom", delay=3600, max_attempts=8) == "received"
    # a1 waits to retry: its group waits with it, the other group does not
    while store.apply_next(fail_a1) is not None:
        pass
    assert seen == [b1]
    assert store.next_received() is None
    assert store.notification_counts() == {"received": 2, "done": 1}
    assert a2 > b1


def test_two_replicas_apply_each_notification_once(opener: Callable[..., SqlStore]) -> None:
    first, second = opener(), opener()
    ids = [first.record_notification(b"{}", f"g{i % 5}") for i in range(40)]
    applied: list[int] = []
    lock = threading.Lock()

    def fn(record: Any, writer: Any) -> list[dict[str, Any]]:
        with lock:
            applied.append(record.id)
        return _writer_opening(key=f"k{record.id % 3}")(record, writer)

    def drain(store: SqlStore) -> None:
        while store.apply_next(fn) is not None:
            pass

    threads = [threading.Thread(target=drain, args=(s,)) for s in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(applied) == ids  # each exactly once
    live = first.list_incidents(state="open")
    assert sorted(i.incident_key for i in live) == ["k0", "k1", "k2"]  # one live incident per key


def test_response_claims_are_leased_once_and_expire(opener: Callable[..., SqlStore]) -> None:
    clock = FakeClock()
    first, second = opener(clock), opener(clock)
    assert first.oldest_pending_ts() is None  # nothing waits: the backlog alert reads age 0
    nid = first.record_notification(b"{}", "g")
    assert first.apply_next(_writer_opening()) is not None
    claimed = first.claim_applied(lease_seconds=15)
    assert claimed is not None and claimed.id == nid and claimed.events
    assert second.claim_applied(lease_seconds=15) is None  # leased by the first replica
    clock.now += 10
    first.renew(nid, 15)  # the heartbeat keeps it
    clock.now += 10
    assert second.claim_applied(lease_seconds=15) is None
    clock.now += 16  # the first replica died: no more renewals
    taken = second.claim_applied(lease_seconds=15)
    assert taken is not None and taken.id == nid
    assert first.oldest_pending_ts() == pytest.approx(clock.now - 36)  # applied, not yet responded: waits
    clock.now += 5
    later = second.record_notification(b"{}", "g2")
    assert first.oldest_pending_ts() == pytest.approx(clock.now - 41)  # store-wide, seen by any replica
    second.mark_done(nid)
    assert first.oldest_pending_ts() == pytest.approx(clock.now)
    assert first.apply_next(_writer_opening(key="k2")) is not None
    first.claim_applied(lease_seconds=15)
    first.mark_done(later)
    assert first.pending_count() == 0 and first.oldest_pending_ts() is None


def test_lifecycle_is_enforced_in_one_transition(opener: Callable[..., SqlStore]) -> None:
    store = opener()
    store.record_notification(b"{}", "g")
    store.apply_next(_writer_opening())
    [incident] = store.list_incidents()
    assert store.transition(incident.id, "contained", "verified") is True
    assert store.transition(incident.id, "contained", "again") is False
    with pytest.raises(InvalidTransition):
        store.transition(incident.id, "open", "reopen")
    assert store.transition(incident.id, "resolved", "gone") is True
    assert store.transition(incident.id, "closed", "done") is True
    detail = store.get_incident(incident.id)
    assert detail.incident.state == "closed" and detail.incident.contained_at and detail.incident.closed_at
    assert [e.kind for e in detail.timeline] == ["opened", "contained", "resolved", "closed"]
    with pytest.raises(NotFound):
        store.transition(999, "resolved", "x")


def test_acknowledge_severity_and_timeline_dedupe(opener: Callable[..., SqlStore]) -> None:
    first, second = opener(), opener()
    first.record_notification(b"{}", "g")
    first.apply_next(_writer_opening())
    [incident] = first.list_incidents()
    results = []
    barrier = threading.Barrier(4)

    def ack(store: SqlStore, who: str) -> None:
        barrier.wait(10)
        results.append(store.acknowledge(incident.id, who))

    threads = [threading.Thread(target=ack, args=(s, f"u{i}")) for i, s in enumerate([first, second] * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, False, False, True]  # the first acknowledgement wins, once
    assert first.raise_severity(incident.id, "SEV2", "worse") is True
    assert second.raise_severity(incident.id, "SEV3", "never lowered") is False
    assert first.add_timeline(incident.id, "note", "x", dedupe_key="once") is True
    assert second.add_timeline(incident.id, "note", "x", dedupe_key="once") is False
    assert second.has_timeline(incident.id, "once")
    detail = second.get_incident(incident.id)
    assert detail.incident.severity == "SEV2" and detail.incident.acknowledged_by in {"u0", "u1", "u2", "u3"}
    assert sum(e.kind == "acknowledged" for e in detail.timeline) == 1


def test_each_timer_fires_once_across_replicas_and_a_dead_ones_timer_is_taken_over(
    opener: Callable[..., SqlStore],
) -> None:
    clock = FakeClock()
    first, second = opener(clock), opener(clock)
    first.record_notification(b"{}", "g")
    first.apply_next(_writer_opening())
    [incident] = first.list_incidents()
    assert first.timers.schedule(incident.id, "verify", clock.now + 5, {"n": 1}) is True
    assert second.timers.schedule(incident.id, "verify", clock.now + 1, {"n": 2}) is False  # no second timer
    clock.now += 6
    got_first = first.timers.claim_due(lease_seconds=15)
    got_second = second.timers.claim_due(lease_seconds=15)
    assert [t.payload for t in got_first] == [{"n": 1}] and got_second == []
    clock.now += 16  # first died holding it
    [again] = second.timers.claim_due(lease_seconds=15)
    assert again.id == got_first[0].id and again.attempts == 2
    second.timers.complete(again.id)
    assert first.timers.pending() == []


def test_a_ledger_step_is_claimed_once_across_replicas_and_guarded_per_model(
    opener: Callable[..., SqlStore],
) -> None:
    first, second = opener(), opener()
    guard = GuardPolicy(cooldown_seconds=600, flap_max=3)
    claims = []
    barrier = threading.Barrier(6)

    def claim(store: SqlStore, incident: str) -> None:
        barrier.wait(10)
        claims.append(
            store.ledger.claim(
                LedgerKey(incident, "contain", "rollback-0", "rollback"),
                model="fraud",
                runbook_id="bad-release",
                params={},
                owner=str(id(store)),
                now=1000.0,
                lease_until=1015.0,
                containment=True,
                automatic=True,
                dry_run=False,
                guard=guard,
            )
        )

    # three incidents on one model, each delivered twice (two replicas): one incident acts, once
    jobs = [(s, inc) for inc in ("1", "2", "3") for s in (first, second)]
    threads = [threading.Thread(target=claim, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(c.status for c in claims)
    assert statuses.count("won") == 1
    assert statuses.count("skipped") == 2  # the cooldown held the other two incidents back
    assert statuses.count("duplicate") == 3
    [won] = [c for c in claims if c.status == "won"]
    row = won.row
    assert first.ledger.renew(row.id, owner=row.owner, lease_until=1030.0) is True
    assert second.ledger.renew(row.id, owner="someone-else", lease_until=1030.0) is False
    assert second.ledger.expired(1020.0) == []
    [expired] = second.ledger.expired(1031.0)
    assert second.ledger.take_over(expired, owner="survivor", now=1031.0, lease_until=1046.0) is True
    assert first.ledger.take_over(expired, owner="late", now=1031.0, lease_until=1046.0) is False
    second.ledger.finish(row.id, "unknown", now=1032.0, error="read timeout after the request was sent")
    assert first.ledger.get(row.key).state == "unknown"  # type: ignore[union-attr]


def test_outbox_order_per_channel_and_once_across_replicas(opener: Callable[..., SqlStore]) -> None:
    first, second = opener(), opener()
    assert first.outbox.oldest_pending_at() is None
    for n in range(3):
        assert first.outbox.enqueue("1", "chat", f'{{"n": {n}}}', f"m{n}", 100.0 + n) is True
    assert second.outbox.enqueue("1", "chat", '{"n": 0}', "m0", 100.0) is False  # dedupe key
    first.outbox.enqueue("1", "pager", '{"p": 1}', "p1", 100.0)
    blocked_a: set[str] = set()
    head = first.outbox.claim_head(101.0, blocked_a, 60.0)
    assert head is not None and head.channel == "chat" and head.payload == {"n": 0}
    blocked_b: set[str] = set()
    other = second.outbox.claim_head(101.0, blocked_b, 60.0)
    assert other is not None and other.channel == "pager"  # chat's head is leased: never its second message
    assert second.outbox.claim_head(101.0, blocked_b, 60.0) is None
    assert second.outbox.oldest_pending_at() == 100.0  # leased but not delivered: still waiting
    first.outbox.mark_delivered(head.id, 200, 101.5)
    assert second.outbox.oldest_pending_at() == 100.0  # the pager's message, queued at 100 too
    nxt = second.outbox.claim_head(102.0, set(), 60.0)
    assert nxt is not None and nxt.payload == {"n": 1}
    second.outbox.mark_failed(nxt.id, 1, 102.0, "410 gone", 410)
    old, new_id = first.outbox.requeue(nxt.id, 103.0)
    assert old.status == "failed" and new_id > nxt.id
    assert [m.payload for m in first.outbox.select(status="pending", channel="chat")] == [{"n": 2}, {"n": 1}]


def test_rejected_bodies_are_kept_and_listed(opener: Callable[..., SqlStore]) -> None:
    store = opener()
    rid = store.record_rejected(
        status=400,
        reason="invalid",
        problems=["$.alerts: required"],
        content_type="application/json",
        body=b"{}",
    )
    [kept] = store.list_rejected()
    assert kept.id == rid and kept.problems == ["$.alerts: required"] and kept.body == b"{}"


def test_schema_is_current_and_a_newer_database_is_refused(opener: Callable[..., SqlStore]) -> None:
    store = opener()
    store.check_schema()
    store.check_writable()
    with store.db.transaction() as tx:
        tx.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 'x')")
    with pytest.raises(StoreError, match="run 'receiver db upgrade'"):
        store.check_schema()
    with pytest.raises(StoreError, match="newer than this receiver knows"):
        opener()


def test_replicas_starting_together_on_a_fresh_database_migrate_once(opener: Callable[..., SqlStore]) -> None:
    barrier = threading.Barrier(5)
    stores: list[SqlStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait(10)
        try:
            stores.append(opener())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(stores) == 5
    with stores[0].db.read() as tx:
        versions = [
            r[0] for r in tx.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        ]
    assert versions == sorted(set(versions)) and versions[-1] == stores[0].db.newest_migration()
    for store in stores:
        store.check_schema()


def test_a_failing_notification_counts_its_attempts_and_an_unavailable_store_does_not(
    opener: Callable[..., SqlStore],
) -> None:
    store = opener()
    nid = store.record_notification(b"{}", "g")

    def duplicate_key(record: Any, writer: Any) -> list[dict[str, Any]]:
        for _ in range(2):  # the second violates the one-live-incident key
            writer.create_incident(
                runbook_id="r", incident_key="k", title="t", model="m", group_labels={}, severity="SEV3"
            )
        return []

    with pytest.raises(StoreError) as raised:
        store.apply_next(duplicate_key)
    assert raised.value.record.id == nid  # type: ignore[attr-defined]
    assert store.list_incidents() == []  # rolled back whole

    def database_gone(record: Any, writer: Any) -> list[dict[str, Any]]:
        raise StoreUnavailable("connection lost")

    with pytest.raises(StoreUnavailable) as lost:
        store.apply_next(database_gone)
    assert not hasattr(lost.value, "record")  # not the notification's fault: no attempt used up
    assert store.next_received() is not None and store.next_received().attempts == 0  # type: ignore[union-attr]


def test_two_replicas_draining_one_channel_send_each_message_once_in_order(
    opener: Callable[..., SqlStore],
) -> None:
    first, second = opener(), opener()
    for n in range(40):
        first.outbox.enqueue("1", "chat", f'{{"n": {n}}}', f"m{n}", 100.0)
    sent: list[int] = []
    lock = threading.Lock()

    def deliver(store: SqlStore) -> None:
        idle = 0
        while idle < 50:
            message = store.outbox.claim_head(101.0, set(), 60.0)
            if message is None:
                idle += 1
                continue
            idle = 0
            with lock:
                sent.append(int(message.payload["n"]))
            store.outbox.mark_delivered(message.id, 200, 101.0)

    threads = [threading.Thread(target=deliver, args=(s,)) for s in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sent == list(range(40))  # each once, in the channel's order, whichever replica sent it


def test_a_commit_by_one_replica_wakes_the_watchers_of_another_on_postgresql_only(
    opener: Callable[..., SqlStore],
) -> None:
    writer, watcher = opener(), opener()
    woken = threading.Event()
    calls: list[float] = []

    def on_new() -> None:
        calls.append(time.monotonic())
        woken.set()

    stop = watcher.watch(on_new)
    try:
        if watcher.dialect == "postgresql":
            assert woken.wait(10), "the listener calls back once connected (work committed before it)"
            time.sleep(0.3)
            woken.clear()
            writer.record_notification(b'{"n": 1}', "g")
            assert woken.wait(5), "a commit by another store on the same database wakes the watcher"
        else:  # SQLite has no signal between processes: its workers poll
            writer.record_notification(b'{"n": 1}', "g")
            assert not woken.wait(1.0) and calls == []
    finally:
        stop()
