"""The whole ingest flow on one page.

::

    webhook ──► store.record_notification(raw body)   (durable, before the 200)
                       │
    worker ──► apply_next():   claim ─► parse ─► match runbook ─► incident changes ─► commit (one
                       │              transaction: notification → "applied", or "done" if no events)
               respond_next(): claim (leased, renewed) ─► Responder.handle(events) ─► notification → "done"
                                          (fails: retried with backoff, error recorded; never lost)

Applying is in arrival order within each Alertmanager group and idempotent; responding is retried
separately, so a failing responder (chat down) neither loses a notification nor blocks the incident state
of the ones after it. Responses to different groups run side by side (several respond threads, several
replicas): one slow endpoint delays only its own incident. A replica that dies mid-response stops renewing
its lease and another replica responds instead (the responder is idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from receiver.errors import ReceiverError, StoreUnavailable
from receiver.incidents import IncidentEvent, apply_notification
from receiver.metrics import ReceiverMetrics
from receiver.payload import decode_json, parse_notification
from receiver.runbooks.model import RunbookSet
from receiver.store.base import IncidentWriter, NotificationRecord, Store

__all__ = ["NullResponder", "Pipeline", "Responder"]

log = logging.getLogger("receiver.pipeline")


class Responder(Protocol):
    """Acts on incident events (actions, comms). Must be idempotent: it may see the same events again."""

    def handle(self, events: Sequence[IncidentEvent]) -> None: ...


class NullResponder:
    """The default: does nothing (actions and comms plug in here)."""

    def handle(self, events: Sequence[IncidentEvent]) -> None:
        return None


class _Renewals:
    """Renews the leases of every response in flight from ONE thread (started when the first is held,
    ending when none is left), instead of a heartbeat thread per response: starting and joining a thread
    per notification cost more than the response itself when the process was busy (each hand-off waits for
    the GIL). Every held id is renewed every ``interval`` seconds; a failed renewal is logged and retried
    at the next beat (the claim is still ours until its lease runs out). A response that ends while its own
    lease is being renewed waits for that renewal (as joining its heartbeat thread did), so a finished or
    failed notification never gets its lease extended afterwards."""

    def __init__(self, renew: Callable[[int], object], interval: float) -> None:
        self.renew, self.interval = renew, max(0.05, interval)
        self._cond = threading.Condition(threading.Lock())
        self._held: dict[int, int] = {}  # notification id -> holders
        self._renewing: int | None = None
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, notification_id: int) -> Iterator[None]:
        with self._cond:
            self._held[notification_id] = self._held.get(notification_id, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="lease-notifications", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._cond:
                while self._renewing == notification_id:
                    self._cond.wait()
                left = self._held.pop(notification_id) - 1
                if left:
                    self._held[notification_id] = left

    def _beat(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._cond:
                if not self._held:
                    self._thread = None
                    return
                held = list(self._held)
            for notification_id in held:
                with self._cond:
                    if notification_id not in self._held:
                        continue  # finished meanwhile: do not extend a released claim
                    self._renewing = notification_id
                try:
                    self.renew(notification_id)
                except Exception as exc:
                    log.warning(
                        "could not renew the lease of notification %s (will retry): %s", notification_id, exc
                    )
                finally:
                    with self._cond:
                        self._renewing = None
                        self._cond.notify_all()


class Pipeline:
    def __init__(
        self,
        store: Store,
        runbooks: RunbookSet,
        responder: Responder | None = None,
        *,
        metrics: ReceiverMetrics | None = None,
        max_attempts: int = 8,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        lease_seconds: float = 15.0,
    ) -> None:
        self.store, self.runbooks = store, runbooks
        self.responder: Responder = responder or NullResponder()
        self.metrics = metrics
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self._lease_seconds = lease_seconds
        self._renewals = _Renewals(lambda i: self.store.renew(i, self._lease_seconds), lease_seconds / 3)

    @property
    def lease_seconds(self) -> float:
        return self._lease_seconds

    @lease_seconds.setter
    def lease_seconds(self, value: float) -> None:
        self._lease_seconds = value
        self._renewals.interval = max(0.05, value / 3)

    def _delay(self, attempts: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2**attempts))

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.count(outcome)

    def _failed(self, notification_id: int, attempts: int, stage: str, exc: BaseException) -> None:
        error = f"{stage}: {type(exc).__name__}: {exc}"
        state = self.store.mark_retry(
            notification_id, error, delay=self._delay(attempts), max_attempts=self.max_attempts
        )
        self._count("failed" if state == "failed" else "retried")
        log.error(
            "notification %s %s failed (attempt %d, now %s): %s",
            notification_id,
            stage,
            attempts + 1,
            state,
            error,
        )

    def apply_next(self) -> bool:
        """Apply the next notification that may be applied; False when there is nothing due."""

        def write(record: NotificationRecord, writer: IncidentWriter) -> list[dict[str, object]]:
            notification = parse_notification(decode_json(record.body))
            return [event.to_dict() for event in apply_notification(writer, notification, self.runbooks)]

        try:
            applied = self.store.apply_next(write)
        except Exception as exc:
            record = getattr(exc, "record", None)
            if record is None:
                raise  # the store itself failed: the worker retries after a poll interval
            if not isinstance(exc, ReceiverError):
                log.exception("unexpected error applying notification %s", record.id)
            self._failed(record.id, record.attempts, "apply", exc)
            return True
        if applied is None:
            return False
        record, events = applied
        self._count("processed")
        if self.metrics is not None:
            self.metrics.lag.observe(max(0.0, time.time() - record.received_ts))
        log.info("notification %s applied: %d event(s)", record.id, len(events or []))
        return True

    def respond_next(self) -> bool:
        """Hand the events of the next applied notification to the responder; False when none is due."""
        record = self.store.claim_applied(self.lease_seconds)
        if record is None:
            return False
        events = [IncidentEvent.from_dict(item) for item in record.events or []]
        try:
            if events:
                with self._renewals.hold(record.id):
                    self.responder.handle(events)
        except StoreUnavailable:
            raise  # the database's trouble: the lease runs out and the response is retried, no attempt used
        except Exception as exc:
            self._failed(record.id, record.attempts, "respond", exc)
            return True
        self.store.mark_done(record.id)
        self._count("responded")
        return True

    def drain(self, limit: int = 10_000) -> int:
        """Apply and respond until nothing is due (tests, replay of a backlog); returns steps taken."""
        steps = 0
        while steps < limit and (self.apply_next() or self.respond_next()):
            steps += 1
        return steps
