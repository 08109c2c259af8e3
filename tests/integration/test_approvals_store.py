"""The approval, chat-thread and inbound aggregates on SQLite and on a real PostgreSQL 15.

The race that matters: many deciders (threads, and two store objects standing for two replicas) decide the
same approval at once; exactly one wins, on both backends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.errors import NotFound
from receiver.store import SqlStore, open_database_store, open_store

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], SqlStore]]:
    opened: list[SqlStore] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None

    def open_one() -> SqlStore:
        store = open_database_store(url) if url else open_store(tmp_path / "data")
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _incident(store: SqlStore, key: str = "k") -> int:
    def fn(record: Any, writer: Any) -> list[dict[str, Any]]:
        incident = writer.create_incident(
            runbook_id="r", incident_key=key, title="t", model="m", group_labels={}, severity="SEV3"
        )
        return [{"incident_id": incident.id}]

    store.record_notification(b"{}", key)
    applied = store.apply_next(fn)
    assert applied is not None and applied[1] is not None
    return int(applied[1][0]["incident_id"])


def _request(store: SqlStore, incident_id: int, step: str = "split", timeout_ts: float = 2e9) -> Any:
    return store.approvals.request(
        incident_id=incident_id,
        phase="contain",
        step_id=step,
        kind="traffic_split",
        summary="traffic_split of m (weight=50)",
        role="responder",
        timeout_ts=timeout_ts,
        on_timeout="skip",
        step={"id": step, "action": "traffic_split", "weight": 50},
    )


def test_request_is_idempotent_and_keeps_the_step(opener: Callable[[], SqlStore]) -> None:
    store = opener()
    incident = _incident(store)
    first, created = _request(store, incident)
    again, created_again = _request(opener(), incident)
    assert created and not created_again and again == first and first.state == "pending"
    assert store.approvals.step_of(first.id) == {"id": "split", "action": "traffic_split", "weight": 50}
    assert [a.id for a in store.approvals.pending(incident)] == [first.id]
    assert store.approvals.for_incident(incident) == [first]
    with pytest.raises(NotFound):
        store.approvals.get(first.id + 100)


def test_concurrent_decisions_from_two_replicas_one_wins(opener: Callable[[], SqlStore]) -> None:
    replicas = [opener(), opener()]
    incident = _incident(replicas[0])
    approval, _ = _request(replicas[0], incident)
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def decide(n: int) -> None:
        store = replicas[n % 2]
        decision = "approve" if n % 3 else "deny"
        barrier.wait()
        _, won = store.approvals.decide(approval.id, decision, f"user{n}", f"reason {n}")
        with lock:
            results.append((f"user{n}", won))

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [who for who, won in results if won]
    assert len(results) == 8 and len(winners) == 1
    final = replicas[1].approvals.get(approval.id)
    assert final.decided_by == winners[0] and final.state in ("approved", "denied")
    assert final.reason == f"reason {winners[0][4:]}" and final.decided_at
    # a decision after the first (or a timeout) changes nothing
    assert replicas[0].approvals.decide(approval.id, "deny", "late", "")[1] is False
    assert replicas[0].approvals.expire_due(3e9) == []
    assert replicas[0].approvals.get(approval.id) == final


def test_expiry_happens_once_and_the_next_timeout_is_known(opener: Callable[[], SqlStore]) -> None:
    store, other = opener(), opener()
    incident = _incident(store)
    early, _ = _request(store, incident, "early", timeout_ts=1000.0)
    late, _ = _request(store, incident, "late", timeout_ts=5000.0)
    assert store.approvals.next_timeout(incident) == 1000.0
    assert [a.id for a in store.approvals.expire_due(2000.0, incident)] == [early.id]
    assert other.approvals.expire_due(2000.0, incident) == []
    assert store.approvals.get(early.id).state == "expired"
    assert store.approvals.get(early.id).decided_by == "timeout"
    assert store.approvals.next_timeout(incident) == 5000.0
    assert [a.id for a in store.approvals.unapplied()] == [early.id]
    assert store.approvals.mark_applied(early.id) and not other.approvals.mark_applied(early.id)
    assert store.approvals.unapplied() == [] and store.approvals.get(late.id).state == "pending"


def test_inbound_requests_are_recorded_once_and_leased(opener: Callable[[], SqlStore]) -> None:
    store, other = opener(), opener()
    first = store.inbound.record("slack", "v0=abc", {"action": "ack", "incident": 1})
    assert first is not None
    assert other.inbound.record("slack", "v0=abc", {"action": "ack", "incident": 1}) is None
    assert store.inbound.record("pagerduty", "v0=abc", {}) is not None  # keys are per source
    claimed = store.inbound.claim(30.0)
    assert claimed[0].id == first and claimed[0].payload == {"action": "ack", "incident": 1}
    assert other.inbound.claim(30.0) == []  # leased by the first
    store.inbound.finish(first)
    assert other.inbound.state_of(first) == "done"


def test_chat_threads_keep_the_first_message(opener: Callable[[], SqlStore]) -> None:
    store, other = opener(), opener()
    incident = _incident(store)
    assert store.chat_threads.get("ops", incident) is None
    kept = store.chat_threads.remember("ops", incident, "C1", "111.1")
    assert other.chat_threads.remember("ops", incident, "C1", "222.2") == kept
    assert other.chat_threads.get("ops", incident) is not None
    assert store.inbound.incident_for_key("k") == incident and store.inbound.incident_for_key("x") is None
