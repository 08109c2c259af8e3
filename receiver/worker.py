"""The background worker thread: drains the durable queue through the :class:`~receiver.pipeline.Pipeline`.

It wakes when the webhook commits a notification (:meth:`Worker.notify`) and otherwise polls every
``poll_interval`` seconds, so notifications written by another process on the same database, or left
over from before a restart, are picked up too.

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
    ) -> None:
        self.pipeline = pipeline
        self.poll_interval = poll_interval
        self.max_yield, self.min_slice = max_yield, min_slice
        self.foreground = Foreground()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="receiver-worker", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        if not self._wake.is_set():  # under load it mostly is: skip the Condition round trip
            self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        log.info("worker started")
        while not self._stop.is_set():
            self._wake.clear()
            self.foreground.wait_idle(self.max_yield)
            if not self._slice():
                self._wake.wait(self.poll_interval)
        log.info("worker stopped")

    def _slice(self) -> bool:
        """Take steps until idle, or until a request is in flight and ``min_slice`` has passed; False
        when there was nothing to do (or a step failed: wait a poll interval before retrying)."""
        until = time.monotonic() + self.min_slice
        while not self._stop.is_set():
            try:
                busy = self.pipeline.apply_next()
                busy = self.pipeline.respond_next() or busy
            except Exception:
                log.exception("worker step failed; retrying in %.1fs", self.poll_interval)
                return False
            if not busy:
                return False
            if self.foreground.in_flight and time.monotonic() >= until:
                return True
        return True
