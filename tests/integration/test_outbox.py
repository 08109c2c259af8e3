"""The durable outbox on a real SQLite store (open_store) delivering to real loopback HTTP servers.

Scheduling uses explicit ``now`` values so backoff is checked without sleeping; the worker test runs the
real background thread with a short backoff.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from receiver.comms.channels import ChannelSet
from receiver.comms.compose import queue_status_update
from receiver.comms.message import ModelVersions, StatusUpdate
from receiver.comms.outbox import Outbox, OutboxWorker, RetryPolicy
from receiver.errors import ConfigError
from receiver.store import SQLiteStore, open_store
from tests.support.realparts import RecordingServer, wait_until

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    st = open_store(tmp_path / "data")
    yield st
    st.close()


def channel_set(tmp_path: Path, **sinks: RecordingServer) -> ChannelSet:
    config = {}
    for name, sink in sinks.items():
        (tmp_path / f"{name}.url").write_text(sink.url + f"/{name}")
        config[name] = {"type": "webhook", "url_file": str(tmp_path / f"{name}.url"), "timeout": 2}
    return ChannelSet.from_config(config)


def drain(outbox: Outbox, start: float, *, step: float = 1000.0, rounds: int = 50) -> float:
    """Call deliver_due with time jumping past any backoff until nothing is pending."""
    now = start
    for _ in range(rounds):
        outbox.deliver_due(now)
        if not outbox.pending():
            return now
        now += step
    raise AssertionError(f"still pending after {rounds} rounds: {outbox.pending()}")


def test_failing_endpoint_gets_every_message_once_in_order_without_blocking_others(
    tmp_path: Path, store: SQLiteStore, recording_server: Callable[..., RecordingServer]
) -> None:
    flaky, healthy = recording_server(fail_first=3), recording_server()
    registry = CollectorRegistry()
    channels = channel_set(tmp_path, flaky=flaky, healthy=healthy)
    outbox = Outbox(store.outbox, channels, registry=registry, clock=lambda: T0 + 30)
    assert registry.get_sample_value("receiver_outbox_oldest_seconds") == 0
    for i in range(5):
        assert outbox.enqueue("inc-1", "flaky", {"n": i}, f"flaky-{i}", now=T0)
        assert outbox.enqueue("inc-1", "healthy", {"n": i}, f"healthy-{i}", now=T0)
    assert registry.get_sample_value("receiver_outbox_pending") == 10
    assert registry.get_sample_value("receiver_outbox_oldest_seconds") == 30  # what the stuck alert reads

    assert outbox.deliver_due(T0) == 5  # the healthy channel is not held up by the flaky one
    assert healthy.bodies() == [{"n": i} for i in range(5)]
    assert flaky.attempts == 1 and flaky.bodies() == []
    [head, *rest] = outbox.pending("flaky")
    assert head.attempts == 1 and "HTTP 503" in (head.last_error or "") and head.last_status == 503
    assert all(m.attempts == 0 for m in rest)  # later messages wait behind the head

    drain(outbox, T0 + 1000)
    assert flaky.bodies() == [{"n": i} for i in range(5)]  # once each, in order
    assert flaky.attempts == 8
    assert [m.attempts for m in outbox.messages_for("inc-1") if m.channel == "flaky"] == [4, 1, 1, 1, 1]
    assert registry.get_sample_value("receiver_outbox_pending") == 0
    assert registry.get_sample_value("receiver_outbox_oldest_seconds") == 0
    delivered = registry.get_sample_value(
        "receiver_outbox_deliveries_total", {"channel": "flaky", "result": "delivered"}
    )
    retried = registry.get_sample_value(
        "receiver_outbox_deliveries_total", {"channel": "flaky", "result": "retry"}
    )
    assert (delivered, retried) == (5, 3)


def test_backoff_is_exponential_jittered_capped_and_respected(
    tmp_path: Path, store: SQLiteStore, recording_server: Callable[..., RecordingServer]
) -> None:
    down = recording_server(fail_first=100)
    policy = RetryPolicy(base=1.0, factor=2.0, max_delay=5.0, jitter=0.2)
    outbox = Outbox(store.outbox, channel_set(tmp_path, down=down), policy=policy)
    outbox.enqueue("i", "down", {"x": 1}, "k", now=T0)
    now, delays = T0, []
    for _ in range(6):
        outbox.deliver_due(now)
        [msg] = outbox.pending()
        delays.append(msg.next_attempt_at - now)
        assert outbox.deliver_due(msg.next_attempt_at - 0.01) == 0  # not before it is due
        now = msg.next_attempt_at
    assert down.attempts == 6
    for delay, nominal in zip(delays, [1, 2, 4, 5, 5, 5], strict=True):
        assert nominal * 0.8 - 1e-9 <= delay <= min(5.0, nominal * 1.2) + 1e-9


def test_permanent_rejection_is_dead_lettered_and_the_queue_moves_on(
    tmp_path: Path, store: SQLiteStore, recording_server: Callable[..., RecordingServer]
) -> None:
    sink = recording_server(fail_first=1, fail_status=404)
    outbox = Outbox(store.outbox, channel_set(tmp_path, hook=sink))
    outbox.enqueue("i", "hook", {"n": 0}, "k0", now=T0)
    outbox.enqueue("i", "hook", {"n": 1}, "k1", now=T0)
    assert outbox.deliver_due(T0) == 1
    assert sink.bodies() == [{"n": 1}]
    [dead] = outbox.dead_letters()
    assert dead.payload == {"n": 0} and dead.status == "failed" and dead.attempts == 1
    assert dead.last_status == 404 and "HTTP 404" in (dead.last_error or "")
    assert dead.failed_at == T0

    new_id = outbox.requeue(dead.id, now=T0 + 1)  # an operator fixed the endpoint
    assert outbox.deliver_due(T0 + 1) == 1
    assert sink.bodies() == [{"n": 1}, {"n": 0}]
    assert "requeued as message" in (outbox.dead_letters()[0].last_error or "")
    assert [m.status for m in outbox.messages_for("i") if m.id == new_id] == ["delivered"]


def test_max_attempts_dead_letters_retryable_failures(
    tmp_path: Path, store: SQLiteStore, recording_server: Callable[..., RecordingServer]
) -> None:
    sink = recording_server(fail_first=100)
    outbox = Outbox(
        store.outbox, channel_set(tmp_path, hook=sink), policy=RetryPolicy(base=1, max_attempts=3)
    )
    outbox.enqueue("i", "hook", {"n": 0}, "k0", now=T0)
    with pytest.raises(AssertionError, match="still pending"):
        drain(outbox, T0, rounds=2)
    drain(outbox, T0 + 5000)
    [dead] = outbox.dead_letters()
    assert dead.attempts == 3 and (dead.last_error or "").startswith("gave up after 3 attempts")


def test_enqueue_is_idempotent_and_survives_restart(
    tmp_path: Path, recording_server: Callable[..., RecordingServer]
) -> None:
    sink = recording_server(fail_first=1)
    channels = channel_set(tmp_path, hook=sink)
    first = open_store(tmp_path / "data")
    outbox = Outbox(first.outbox, channels)
    assert outbox.enqueue("i", "hook", {"n": 0}, "k0", now=T0) is True
    assert outbox.enqueue("i", "hook", {"n": 0}, "k0", now=T0) is False
    outbox.deliver_due(T0)  # fails once, stays pending
    first.close()

    second = open_store(tmp_path / "data")  # a restart
    try:
        again = Outbox(second.outbox, channels)
        assert again.enqueue("i", "hook", {"n": 0}, "k0", now=T0 + 1) is False  # replayed event
        [msg] = again.pending()
        assert msg.attempts == 1
        drain(again, T0 + 1000)
        assert sink.bodies() == [{"n": 0}]
    finally:
        second.close()


def test_bad_enqueue_is_refused_clearly_and_stores_nothing(
    tmp_path: Path, store: SQLiteStore, recording_server: Callable[..., RecordingServer]
) -> None:
    outbox = Outbox(store.outbox, channel_set(tmp_path, hook=recording_server()))
    with pytest.raises(ConfigError, match="unknown channel 'slack'; configured: hook"):
        outbox.enqueue("i", "slack", {"x": 1}, "k")
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        outbox.enqueue("i", "hook", {"x": object()}, "k")
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        outbox.enqueue("i", "hook", {"x": float("nan")}, "k")
    assert outbox.messages_for("i") == []


def test_two_deliverers_on_one_database_send_each_message_once_in_order(
    tmp_path: Path, recording_server: Callable[..., RecordingServer]
) -> None:
    sink = recording_server()
    channels = channel_set(tmp_path, hook=sink)
    stores = [open_store(tmp_path / "data"), open_store(tmp_path / "data")]  # like two receiver processes
    try:
        outboxes = [Outbox(s.outbox, channels) for s in stores]
        for i in range(30):
            outboxes[i % 2].enqueue("i", "hook", {"n": i}, f"k{i}", now=T0)
        barrier = threading.Barrier(2)

        def run(ob: Outbox) -> None:
            barrier.wait()
            for _ in range(20):
                ob.deliver_due(T0)

        threads = [threading.Thread(target=run, args=(ob,)) for ob in outboxes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sink.bodies() == [{"n": i} for i in range(30)]
    finally:
        for s in stores:
            s.close()


def test_worker_thread_delivers_through_failures_and_stops(
    tmp_path: Path, store: SQLiteStore, recording_server: Callable[..., RecordingServer]
) -> None:
    sink = recording_server(fail_first=2)
    outbox = Outbox(
        store.outbox, channel_set(tmp_path, hook=sink), policy=RetryPolicy(base=0.05, max_delay=0.2)
    )
    worker = OutboxWorker(outbox, interval=0.05).start()
    try:
        for i in range(3):
            outbox.enqueue("i", "hook", {"n": i}, f"k{i}")
        worker.wake()
        wait_until(lambda: len(sink.requests) == 3, timeout=10, message="3 deliveries")
    finally:
        worker.stop(timeout=5)
    assert not worker.running
    assert sink.bodies() == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert sink.attempts == 5


def test_queue_status_update_renders_per_audience_and_dedupes(
    tmp_path: Path, store: SQLiteStore, recording_server: Callable[..., RecordingServer]
) -> None:
    oncall, board = recording_server(), recording_server()
    (tmp_path / "o.url").write_text(oncall.url)
    (tmp_path / "b.url").write_text(board.url)
    channels = ChannelSet.from_config(
        {
            "ops": {"type": "webhook", "url_file": str(tmp_path / "o.url")},
            "board": {"type": "webhook", "url_file": str(tmp_path / "b.url"), "audience": "stakeholder"},
        }
    )
    outbox = Outbox(store.outbox, channels)
    update = StatusUpdate(
        "9",
        "opened",
        "SEV3",
        "open",
        "Latency",
        ModelVersions("ranker", "v2", "v1"),
        impact="slower search results",
    )
    queued = queue_status_update(outbox, channels, update, ["ops", "board"])
    assert [q.queued for q in queued] == [True, True]
    assert [q.message.audience for q in queued] == ["oncall", "stakeholder"]
    assert [q.queued for q in queue_status_update(outbox, channels, update, ["ops", "board"])] == [
        False,
        False,
    ]
    outbox.deliver_due()
    [ops_body], [board_body] = oncall.bodies(), board.bodies()
    assert ops_body["audience"] == "oncall" and "active v2" in ops_body["text"]
    assert board_body["audience"] == "stakeholder" and "slower search results" in board_body["text"]
    assert oncall.requests[0].headers["Idempotency-Key"] == "9:opened:0:ops:oncall"


def test_every_receiver_metric_the_engine_alerts_read_is_exported(tmp_path: Path, store: SQLiteStore) -> None:
    # a renamed metric would silence the engine's own alerts without a sound
    from prometheus_client import generate_latest

    from receiver.metrics import ReceiverMetrics

    registry = CollectorRegistry()
    ReceiverMetrics(registry, store)
    Outbox(store.outbox, channel_set(tmp_path), registry=registry)
    text = generate_latest(registry).decode()
    rules = (Path(__file__).resolve().parents[2] / "alert_rules/engine_alerts.yml").read_text()
    read = set(re.findall(r"\b(receiver_[a-z_]+)", rules))
    assert len(read) >= 5 and {n for n in read if f"# TYPE {n} " not in text} == set()
