"""The scheduler thread: fires due durable timers (see :mod:`receiver.timers`) through their handlers.

A handler returns ``None`` when the timer is finished, or ``(due_ts, payload)`` to fire again later (the
verification loop and the update cadence work this way). A handler that raises is retried with backoff and
its error is kept on the timer row; it never stops the thread. While a handler runs, its lease is renewed
(:class:`receiver.leases.Heartbeat`), so a slow handler is not fired a second time by another replica, and a
dead replica's timers are fired by a survivor within one lease.

The same thread runs the *sweep* every ``sweep_interval``: the ledger's restart rule for action steps whose
owner stopped renewing their lease (a replica killed mid-action), so their outcome reaches the timeline and
escalates while the survivors run, not only at the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from receiver.leases import Heartbeat
from receiver.timers import Timer, TimerQueue

__all__ = ["Handler", "Scheduler"]

log = logging.getLogger("receiver.scheduler")

#: ``handler(timer) -> None | (next_due_ts, payload)``
Handler = Callable[[Timer], "tuple[float, dict[str, Any]] | None"]


class Scheduler:
    def __init__(
        self,
        timers: TimerQueue,
        handlers: Mapping[str, Handler],
        *,
        interval: float = 1.0,
        max_backoff: float = 300.0,
        lease_seconds: float = 15.0,
        sweep: Callable[[], Any] | None = None,
        sweep_interval: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timers, self.handlers = timers, dict(handlers)
        self.interval, self.max_backoff = interval, max_backoff
        self.lease_seconds = lease_seconds
        self.sweep, self.sweep_interval = sweep, sweep_interval
        self.clock = clock
        self._last_sweep = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self, now: float | None = None) -> int:
        """Fire every due timer once; returns how many fired (used by the thread and by tests)."""
        fired = 0
        for timer in self.timers.claim_due(now, lease_seconds=self.lease_seconds):
            fired += 1
            handler = self.handlers.get(timer.kind)
            if handler is None:
                log.error("no handler for timer kind %r (timer %d); cancelling", timer.kind, timer.id)
                self.timers.complete(timer.id)
                continue
            try:
                with Heartbeat(
                    partial(self.timers.renew, timer.id, self.lease_seconds), self.lease_seconds / 3
                ):
                    again = handler(timer)
            except Exception as exc:
                delay = min(self.max_backoff, 2.0 ** min(timer.attempts, 16))
                log.exception(
                    "timer %d (%s, incident %d) failed; retry in %.0fs",
                    timer.id,
                    timer.kind,
                    timer.incident_id,
                    delay,
                )
                self.timers.reschedule(timer.id, self.clock() + delay, error=f"{type(exc).__name__}: {exc}")
                continue
            if again is None:
                self.timers.complete(timer.id)
            else:
                due_ts, payload = again
                self.timers.reschedule(timer.id, due_ts, payload)
        return fired

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="receiver-scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sweep_if_due(self) -> None:
        if self.sweep is None or self.clock() - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = self.clock()
        try:
            self.sweep()
        except Exception:
            log.exception("sweep of expired action leases failed; retrying in %.1fs", self.sweep_interval)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_due() > 0
            except Exception:
                log.exception("scheduler step failed")
                busy = False
            self.sweep_if_due()
            if not busy:
                self._stop.wait(self.interval)
