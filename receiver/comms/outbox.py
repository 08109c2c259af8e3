"""The durable outbox: status updates are queued in SQLite and delivered in order, per channel, with retries.

Guarantees (table ``outbox``, migration ``0002_outbox.sql``):

* **Idempotent enqueue.** ``dedupe_key`` is unique; queuing the same message again (a retried webhook,
  an HA duplicate, a restart replaying events) is a no-op.
* **Order per channel.** Only the oldest pending message of a channel (its head) is ever attempted. A
  failing head blocks later messages of *that* channel until it is delivered or dead-lettered; other
  channels carry on.
* **Retries.** 5xx, 429 and transport errors are retried with exponential backoff, ±jitter, capped at
  ``RetryPolicy.max_delay``; after ``max_attempts`` (if set) the message is dead-lettered. Other 4xx are
  dead-lettered at once: the endpoint will not change its mind. Every attempt's error is recorded.
* **Once.** A head is leased inside ``BEGIN IMMEDIATE`` before it is sent, so concurrent deliverers
  (threads, processes, HA replicas sharing the file) never send it twice. The one gap is a crash between
  the endpoint's 2xx and the commit that marks the row delivered: the lease expires and the message is
  sent again. Generic webhooks receive an ``Idempotency-Key`` header (the dedupe key) to close it.

The outbox needs only something with ``transaction()`` yielding a :class:`sqlite3.Connection` inside
``BEGIN IMMEDIATE`` (:class:`receiver.store.SQLiteStore` is one).
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from receiver.comms.channels import Channel
from receiver.errors import ConfigError, DeliveryError, NotFound

__all__ = ["Outbox", "OutboxMessage", "OutboxStore", "OutboxWorker", "RetryPolicy"]

log = logging.getLogger(__name__)


class OutboxStore(Protocol):
    """What the outbox needs from the store."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff after the n-th failed attempt: ``min(max_delay, base * factor**(n-1))`` ± ``jitter``."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2
    max_attempts: int | None = None

    def delay(self, attempts: int, rng: random.Random) -> float:
        raw = min(self.max_delay, self.base * self.factor ** max(0, attempts - 1))
        return min(self.max_delay, raw * (1.0 + rng.uniform(-self.jitter, self.jitter)))


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    incident_id: str
    channel: str
    dedupe_key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    last_status: int | None
    created_at: float
    delivered_at: float | None
    failed_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> OutboxMessage:
        return cls(
            id=row[0],
            incident_id=row[1],
            channel=row[2],
            dedupe_key=row[3],
            payload=json.loads(row[4]),
            status=row[5],
            attempts=row[6],
            next_attempt_at=row[7],
            last_error=row[8],
            last_status=row[9],
            created_at=row[10],
            delivered_at=row[11],
            failed_at=row[12],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "channel": self.channel,
            "dedupe_key": self.dedupe_key,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "last_status": self.last_status,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
            "failed_at": self.failed_at,
        }


_COLUMNS = (
    "id, incident_id, channel, dedupe_key, payload, status, attempts, next_attempt_at, last_error, "
    "last_status, created_at, delivered_at, failed_at"
)


class Outbox:
    """Queue and deliver channel payloads. ``channels`` maps a channel name to its :class:`Channel`."""

    def __init__(
        self,
        store: OutboxStore,
        channels: Mapping[str, Channel],
        *,
        registry: CollectorRegistry | None = None,
        policy: RetryPolicy | None = None,
        lease_s: float = 60.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._channels = channels
        self.policy = policy or RetryPolicy()
        self.lease_s = lease_s
        self._rng = rng or random.Random()
        self._clock = clock
        metrics_registry = registry if registry is not None else CollectorRegistry()
        self._pending_gauge = Gauge(
            "receiver_outbox_pending", "Outbox messages waiting to be delivered", registry=metrics_registry
        )
        self._deliveries = Counter(
            "receiver_outbox_deliveries",
            "Outbox delivery attempts by outcome (delivered, retry, failed)",
            ["channel", "result"],
            registry=metrics_registry,
        )

    # -- queueing ----------------------------------------------------------------------------------------

    def enqueue(
        self,
        incident_id: str | int,
        channel: str,
        payload: Mapping[str, Any],
        dedupe_key: str,
        *,
        now: float | None = None,
    ) -> bool:
        """Queue ``payload`` for ``channel``; returns False when ``dedupe_key`` was already queued."""
        if channel not in self._channels:
            known = ", ".join(sorted(self._channels)) or "none"
            raise ConfigError(f"cannot queue a message for unknown channel {channel!r}; configured: {known}")
        if not dedupe_key:
            raise ValueError("dedupe_key must not be empty")
        try:
            body = json.dumps(dict(payload), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"outbox payload for channel {channel!r} is not JSON-serialisable: {exc}"
            ) from exc
        stamp = self._clock() if now is None else now
        with self._store.transaction() as conn:
            cursor = conn.execute(
                """INSERT OR IGNORE INTO outbox (incident_id, channel, dedupe_key, payload, next_attempt_at,
                                                 created_at) VALUES (?, ?, ?, ?, ?, ?)""",
                (str(incident_id), channel, dedupe_key, body, stamp, stamp),
            )
            added = cursor.rowcount == 1
            self._refresh_gauge(conn)
        return added

    # -- delivery ----------------------------------------------------------------------------------------

    def deliver_due(self, now: float | None = None) -> int:
        """Deliver every due message, in order per channel; returns how many were delivered."""
        stamp = self._clock() if now is None else now
        delivered = 0
        blocked: set[str] = set()
        while True:
            message = self._claim_head(stamp, blocked)
            if message is None:
                break
            channel = self._channels.get(message.channel)
            if channel is None:
                blocked.add(message.channel)
                self._release(message.id, f"channel {message.channel!r} is not configured")
                continue
            try:
                status = channel.send(message.payload, idempotency_key=message.dedupe_key)
            except DeliveryError as exc:
                if self._record_failure(message, exc, stamp):
                    blocked.add(message.channel)
                continue
            self._record_success(message, status, stamp)
            delivered += 1
        return delivered

    def _nothing_due(self, now: float) -> bool:
        """A read-only look first, so an idle outbox never takes the write lock (or an fsync)."""
        connection = getattr(self._store, "connection", None)
        if connection is None:
            return False
        row = (
            connection()
            .execute(
                "SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until <= ? "
                "LIMIT 1",
                (now, now),
            )
            .fetchone()
        )
        return row is None

    def _claim_head(self, now: float, blocked: set[str]) -> OutboxMessage | None:
        if self._nothing_due(now):
            return None
        with self._store.transaction() as conn:
            rows = conn.execute(
                f"""SELECT {_COLUMNS}, lease_until FROM outbox WHERE id IN (
                        SELECT MIN(id) FROM outbox WHERE status = 'pending' GROUP BY channel)
                    ORDER BY id"""
            ).fetchall()
            for row in rows:
                message = OutboxMessage.from_row(row)
                if message.channel in blocked:
                    continue
                if message.next_attempt_at > now or row[13] > now:
                    blocked.add(message.channel)  # the head is not due (or being sent elsewhere)
                    continue
                conn.execute(
                    "UPDATE outbox SET lease_until = ? WHERE id = ?", (now + self.lease_s, message.id)
                )
                return message
        return None

    def _release(self, message_id: int, error: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET lease_until = 0, last_error = ? WHERE id = ?", (error, message_id)
            )

    def _record_success(self, message: OutboxMessage, status: int, now: float) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                """UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?,
                       last_status = ?, lease_until = 0 WHERE id = ?""",
                (now, status, message.id),
            )
            self._refresh_gauge(conn)
        self._deliveries.labels(message.channel, "delivered").inc()
        log.info(
            "outbox: delivered message %s (incident %s) to channel %s",
            message.id,
            message.incident_id,
            message.channel,
        )

    def _record_failure(self, message: OutboxMessage, exc: DeliveryError, now: float) -> bool:
        """Record a failed attempt; returns True if the message stays pending (the channel is blocked)."""
        attempts = message.attempts + 1
        exhausted = self.policy.max_attempts is not None and attempts >= self.policy.max_attempts
        with self._store.transaction() as conn:
            if exc.retryable and not exhausted:
                delay = self.policy.delay(attempts, self._rng)
                conn.execute(
                    """UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, last_status = ?,
                           lease_until = 0 WHERE id = ?""",
                    (attempts, now + delay, exc.message, exc.status, message.id),
                )
                result = "retry"
            else:
                error = exc.message if not exhausted else f"gave up after {attempts} attempts: {exc.message}"
                conn.execute(
                    """UPDATE outbox SET status = 'failed', attempts = ?, failed_at = ?, last_error = ?,
                           last_status = ?, lease_until = 0 WHERE id = ?""",
                    (attempts, now, error, exc.status, message.id),
                )
                result = "failed"
            self._refresh_gauge(conn)
        self._deliveries.labels(message.channel, result).inc()
        log.warning(
            "outbox: message %s to channel %s: %s (%s, attempt %d)",
            message.id,
            message.channel,
            exc.message,
            "will retry" if result == "retry" else "dead-lettered",
            attempts,
        )
        return result == "retry"

    def _refresh_gauge(self, conn: sqlite3.Connection) -> None:
        count = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
        self._pending_gauge.set(count)

    # -- inspection and operator actions -------------------------------------------------------------------

    def _select(self, where: str, params: tuple[Any, ...]) -> list[OutboxMessage]:
        with self._store.transaction() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE {where} ORDER BY id", params).fetchall()
        return [OutboxMessage.from_row(r) for r in rows]

    def pending(self, channel: str | None = None) -> list[OutboxMessage]:
        if channel is None:
            return self._select("status = 'pending'", ())
        return self._select("status = 'pending' AND channel = ?", (channel,))

    def dead_letters(self) -> list[OutboxMessage]:
        """Messages that were permanently refused or gave up, with their last error."""
        return self._select("status = 'failed'", ())

    def messages_for(self, incident_id: str | int) -> list[OutboxMessage]:
        return self._select("incident_id = ?", (str(incident_id),))

    def requeue(self, message_id: int, *, now: float | None = None) -> int:
        """Queue a copy of a dead letter at the end of its channel (after fixing the channel); returns the
        new message id. The dead letter stays listed, its error noting the copy."""
        stamp = self._clock() if now is None else now
        with self._store.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise NotFound(f"outbox message {message_id} does not exist")
            old = OutboxMessage.from_row(row)
            if old.status != "failed":
                raise ValueError(
                    f"outbox message {message_id} is {old.status}, not failed; only dead "
                    "letters can be requeued"
                )
            cursor = conn.execute(
                """INSERT INTO outbox (incident_id, channel, dedupe_key, payload, next_attempt_at, created_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (
                    old.incident_id,
                    old.channel,
                    f"{old.dedupe_key}#requeued-{stamp:.6f}",
                    json.dumps(old.payload, sort_keys=True),
                    stamp,
                    stamp,
                ),
            )
            new_id = int(cursor.lastrowid or 0)
            conn.execute(
                "UPDATE outbox SET last_error = ? WHERE id = ?",
                (f"requeued as message {new_id}; {old.last_error or ''}", message_id),
            )
            self._refresh_gauge(conn)
        return new_id


class OutboxWorker:
    """A daemon thread calling :meth:`Outbox.deliver_due` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, outbox: Outbox, *, interval: float = 1.0, name: str = "outbox-worker") -> None:
        self._outbox = outbox
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> OutboxWorker:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Deliver now instead of at the next tick (call after enqueueing)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._outbox.deliver_due()
            except Exception:  # a store hiccup must not kill the worker; retry next tick
                log.exception("outbox worker: delivery pass failed; retrying in %.1fs", self._interval)
            self._wake.wait(self._interval)
            self._wake.clear()
