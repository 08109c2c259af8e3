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
* **Once.** A head is leased in a transaction before it is sent, so concurrent deliverers (threads,
  processes, replicas sharing the database) never send it twice. The one gap is a crash between
  the endpoint's 2xx and the commit that marks the row delivered: the lease expires and the message is
  sent again. Generic webhooks receive an ``Idempotency-Key`` header (the dedupe key) to close it.

The rows live in the store (:class:`receiver.store.base.OutboxRows`, SQLite or PostgreSQL); this module is
the delivery policy.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from receiver.comms.channels import Channel
from receiver.errors import ConfigError, DeliveryError
from receiver.leases import Heartbeat
from receiver.store.base import OutboxMessage, OutboxRows

__all__ = ["Outbox", "OutboxMessage", "OutboxWorker", "RetryPolicy"]

log = logging.getLogger(__name__)


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


class Outbox:
    """Queue and deliver channel payloads. ``channels`` maps a channel name to its :class:`Channel`."""

    def __init__(
        self,
        rows: OutboxRows,
        channels: Mapping[str, Channel],
        *,
        registry: CollectorRegistry | None = None,
        policy: RetryPolicy | None = None,
        lease_s: float = 60.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rows = getattr(rows, "outbox", rows)  # a whole store, or just its outbox rows
        self._channels = channels
        self.policy = policy or RetryPolicy()
        self.lease_s = lease_s
        self._rng = rng or random.Random()
        self._clock = clock
        metrics_registry = registry if registry is not None else CollectorRegistry()
        self._pending_gauge = Gauge(
            "receiver_outbox_pending", "Outbox messages waiting to be delivered", registry=metrics_registry
        )
        self._pending_gauge.set_function(self._pending_or_nan)
        self._oldest_gauge = Gauge(
            "receiver_outbox_oldest_seconds",
            "Age of the oldest outbox message not yet delivered (0 when none)",
            registry=metrics_registry,
        )
        self._oldest_gauge.set_function(self._oldest_age_or_nan)
        self._deliveries = Counter(
            "receiver_outbox_deliveries",
            "Outbox delivery attempts by outcome (delivered, retry, failed)",
            ["channel", "result"],
            registry=metrics_registry,
        )

    def _pending_or_nan(self) -> float:
        try:
            return float(self._rows.pending_count())
        except Exception:  # an unreachable store shows as NaN, not as a failed scrape
            return float("nan")

    def _oldest_age_or_nan(self) -> float:
        try:
            queued = self._rows.oldest_pending_at()
        except Exception:
            return float("nan")
        return 0.0 if queued is None else max(0.0, self._clock() - queued)

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
        return self._rows.enqueue(str(incident_id), channel, body, dedupe_key, stamp)

    # -- delivery ----------------------------------------------------------------------------------------

    def deliver_due(self, now: float | None = None) -> int:
        """Deliver every due message, in order per channel; returns how many were delivered."""
        stamp = self._clock() if now is None else now
        delivered = 0
        blocked: set[str] = set()
        while True:
            message = self._rows.claim_head(stamp, blocked, self.lease_s)
            if message is None:
                break
            channel = self._channels.get(message.channel)
            if channel is None:
                blocked.add(message.channel)
                self._rows.release(message.id, f"channel {message.channel!r} is not configured")
                continue
            try:
                with Heartbeat(
                    partial(self._renew, message.id), self.lease_s / 3, name=f"lease-outbox-{message.id}"
                ):
                    status = channel.send(message.payload, idempotency_key=message.dedupe_key)
            except DeliveryError as exc:
                if self._record_failure(message, exc, stamp):
                    blocked.add(message.channel)
                continue
            self._record_success(message, status, stamp)
            delivered += 1
        return delivered

    def _renew(self, message_id: int) -> None:
        self._rows.renew(message_id, self._clock() + self.lease_s)

    def _record_success(self, message: OutboxMessage, status: int, now: float) -> None:
        self._rows.mark_delivered(message.id, status, now)
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
        if exc.retryable and not exhausted:
            delay = self.policy.delay(attempts, self._rng)
            self._rows.mark_retry(message.id, attempts, now + delay, exc.message, exc.status)
            result = "retry"
        else:
            error = exc.message if not exhausted else f"gave up after {attempts} attempts: {exc.message}"
            self._rows.mark_failed(message.id, attempts, now, error, exc.status)
            result = "failed"
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

    # -- inspection and operator actions -------------------------------------------------------------------

    def pending(self, channel: str | None = None) -> list[OutboxMessage]:
        return self._rows.select(status="pending", channel=channel)

    def dead_letters(self) -> list[OutboxMessage]:
        """Messages that were permanently refused or gave up, with their last error."""
        return self._rows.select(status="failed")

    def messages_for(self, incident_id: str | int) -> list[OutboxMessage]:
        return self._rows.select(incident_id=str(incident_id))

    def requeue(self, message_id: int, *, now: float | None = None) -> int:
        """Queue a copy of a dead letter at the end of its channel (after fixing the channel); returns the
        new message id. The dead letter stays listed, its error noting the copy."""
        stamp = self._clock() if now is None else now
        _, new_id = self._rows.requeue(message_id, stamp)
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
