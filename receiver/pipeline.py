"""The whole ingest flow on one page.

::

    webhook ──► store.record_notification(raw body)   (durable, before the 200)
                       │
    worker ──► apply_next():   parse ─► match runbook ─► incident changes ─► commit (one transaction,
                       │                                       notification → "applied" ("done" if no events)
               respond_next(): events ─► Responder.handle(events) ─► notification → "done"
                                          (fails: retried with backoff, error recorded; never lost)

Applying is strictly in arrival order and idempotent; responding is retried separately, so a failing
responder (chat down) neither loses a notification nor blocks the incident state of the ones after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from receiver.errors import ReceiverError
from receiver.incidents import IncidentEvent, apply_notification
from receiver.metrics import ReceiverMetrics
from receiver.payload import decode_json, parse_notification
from receiver.runbooks.model import RunbookSet
from receiver.store.base import IncidentWriter, Store

__all__ = ["NullResponder", "Pipeline", "Responder"]

log = logging.getLogger("receiver.pipeline")


class Responder(Protocol):
    """Acts on incident events (actions, comms). Must be idempotent: it may see the same events again."""

    def handle(self, events: Sequence[IncidentEvent]) -> None: ...


class NullResponder:
    """The default: does nothing (actions and comms plug in here)."""

    def handle(self, events: Sequence[IncidentEvent]) -> None:
        return None


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
    ) -> None:
        self.store, self.runbooks = store, runbooks
        self.responder: Responder = responder or NullResponder()
        self.metrics = metrics
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay

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
        """Apply the oldest received notification; False when there is nothing due."""
        record = self.store.next_received()
        if record is None:
            return False
        try:
            notification = parse_notification(decode_json(record.body))

            def write(writer: IncidentWriter) -> list[dict[str, object]]:
                events = apply_notification(writer, notification, self.runbooks)
                return [event.to_dict() for event in events]

            events = self.store.apply(record.id, write)
        except ReceiverError as exc:
            self._failed(record.id, record.attempts, "apply", exc)
            return True
        except Exception as exc:
            log.exception("unexpected error applying notification %s", record.id)
            self._failed(record.id, record.attempts, "apply", exc)
            return True
        if events is not None:
            self._count("processed")
            if self.metrics is not None:
                self.metrics.lag.observe(max(0.0, time.time() - record.received_ts))
            log.info("notification %s applied: %d event(s)", record.id, len(events))
        return True

    def respond_next(self) -> bool:
        """Hand the events of the oldest applied notification to the responder; False when none is due."""
        record = self.store.claim_applied()
        if record is None:
            return False
        events = [IncidentEvent.from_dict(item) for item in record.events or []]
        try:
            if events:
                self.responder.handle(events)
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
