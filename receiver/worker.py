"""The background workers: drain the durable queue through the :class:`~receiver.pipeline.Pipeline`.

One *apply* thread applies notifications (cheap, in order within each group) and ``respond_threads``
*respond* threads run the responses (evidence, actions, messages: slow, and mostly waiting on the network),
each on a different group, so a slow endpoint or a hung Prometheus holds up only its own incident. They wake
when the webhook commits a notification (:meth:`Worker.notify`: this process's webhook, or on PostgreSQL
any replica's commit, through the store's :meth:`watch`) or the apply thread produces events, and
otherwise poll every ``poll_interval`` seconds, so work written by another replica on the same database, or
left over from before a restart, is picked up too.

The worker runs at a lower priority than the webhook: requests mark themselves in flight
(:meth:`Foreground.active`). The worker waits for a moment with none in flight (at most ``max_yield``
seconds), then works in a slice: it keeps taking steps while no request is in flight, and for at least
``min_slice`` seconds even if one is. Under a flood it so gets about ``min_slice / (max_yield +
min_slice)`` of the time (the backlog is durable and drains afterwards) and never stops. This matters
because the worker's Python work holds the GIL that the request threads need.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from receiver.pipeline import Pipeline

__all__ = ["Foreground", "Worker"]

log = logging.getLogger("receiver.worker")


class Foreground:
    """Counts requests in flight so that background work can wait for a gap between them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Event()
        self._idle.set()

    def enter(self) -> None:
        """A request is in flight (pair with :meth:`leave` in ``finally``; cheaper than :meth:`active`)."""
        with self._lock:
            self._in_flight += 1
            if self._in_flight == 1:
                self._idle.clear()

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @contextmanager
    def active(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def wait_idle(self, timeout: float) -> bool:
        """Block until no request is in flight (True) or ``timeout`` seconds passed (False)."""
        return self._idle.wait(timeout)


class Worker:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        poll_interval: float = 1.0,
        max_yield: float = 0.02,
        min_slice: float = 0.004,
        respond_threads: int = 4,
        lease_seconds: float | None = None,
        remote_quiet: float = 0.1,
        max_remote_wait: float = 0.5,
    ) -> None:
        self.pipeline = pipeline
        if lease_seconds is not None:
            pipeline.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.max_yield, self.min_slice = max_yield, min_slice
        self.remote_quiet, self.max_remote_wait = remote_quiet, max_remote_wait
        self.respond_threads = max(1, respond_threads)
        self.foreground = Foreground()
        self._wake = threading.Event()
        self._woken_locally = False
        self._remote_first: float | None = None  # the first remote signal of the burst being waited out
        self._remote_last = 0.0
        self._respond_wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [threading.Thread(target=self._run_apply, name="receiver-apply", daemon=True)]
        self._threads += [
            threading.Thread(target=self._run_respond, name=f"receiver-respond-{n}", daemon=True)
            for n in range(self.respond_threads)
        ]
        for thread in self._threads:
            thread.start()

    def notify(self) -> None:
        """This process's webhook committed a notification: work at once."""
        self._woken_locally = True
        if not self._wake.is_set():  # under load it mostly is: skip the Condition round trip
            self._wake.set()

    def notify_remote(self) -> None:
        """Some process committed notifications (the store's watch: on PostgreSQL, any replica's commit)."""
        self._remote_last = time.monotonic()
        if self._remote_first is None:
            self._remote_first = self._remote_last
        if not self._wake.is_set():
            self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._respond_wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def _run_apply(self) -> None:
        log.info("worker started (%d respond threads)", self.respond_threads)
        while not self._stop.is_set():
            self._wake.clear()
            self.foreground.wait_idle(self.max_yield)
            if not self._slice():
                self._wake.wait(self.poll_interval)
                self._let_a_remote_burst_pass()
        log.info("worker stopped")

    def _let_a_remote_burst_pass(self) -> None:
        """Woken from idle by another process's commit only: start once its signals have paused for
        ``remote_quiet`` seconds (at most ``max_remote_wait`` after the first). A lone notification waits
        ``remote_quiet``; a storm flushed at a web-only replica is acknowledged first, instead of its answers
        competing for the CPU with this worker (measured with ``bench/alert_storm.py --split-work``)."""
        first = self._remote_first
        while first is not None and not self._woken_locally and not self._stop.is_set():
            now = time.monotonic()
            quiet = now - self._remote_last
            if quiet >= self.remote_quiet or now - first >= self.max_remote_wait:
                break
            self._stop.wait(self.remote_quiet - quiet)
        self._remote_first, self._woken_locally = None, False

    def _slice(self) -> bool:
        """Apply until idle, or until a request is in flight and ``min_slice`` has passed; False when there
        was nothing to do (or a step failed: wait a poll interval before retrying)."""
        until = time.monotonic() + self.min_slice
        while not self._stop.is_set():
            try:
                busy = self.pipeline.apply_next()
            except Exception:
                log.exception("worker step failed; retrying in %.1fs", self.poll_interval)
                return False
            if not busy:
                return False
            self._respond_wake.set()
            if self.foreground.in_flight and time.monotonic() >= until:
                return True
        return True

    def _run_respond(self) -> None:
        while not self._stop.is_set():
            self.foreground.wait_idle(self.max_yield)
            try:
                busy = self.pipeline.respond_next()
            except Exception:
                log.exception("respond step failed; retrying in %.1fs", self.poll_interval)
                busy = False
            if not busy:
                self._respond_wake.wait(self.poll_interval)
                self._respond_wake.clear()
