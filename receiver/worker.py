"""The background worker thread: drains the durable queue through the :class:`~receiver.pipeline.Pipeline`.

It wakes when the webhook commits a notification (:meth:`Worker.notify`) and otherwise polls every
``poll_interval`` seconds, so notifications written by another process on the same database, or left
over from before a restart, are picked up too.
"""

from __future__ import annotations

import logging
import threading

from receiver.pipeline import Pipeline

__all__ = ["Worker"]

log = logging.getLogger("receiver.worker")


class Worker:
    def __init__(self, pipeline: Pipeline, *, poll_interval: float = 1.0) -> None:
        self.pipeline = pipeline
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="receiver-worker", daemon=True)
        self._thread.start()

    def notify(self) -> None:
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
            try:
                busy = self.pipeline.apply_next()
                busy = self.pipeline.respond_next() or busy
            except Exception:
                log.exception("worker step failed; retrying in %.1fs", self.poll_interval)
                busy = False
            if not busy:
                self._wake.wait(self.poll_interval)
        log.info("worker stopped")
