"""Lease heartbeats: renew a claim while the work it covers goes on.

Work claimed from the store (a notification's response, a timer, an action step) carries a short lease, so
that a replica killed mid-way loses it quickly and a survivor takes the work over (DESIGN.md "Scale-out").
Work that runs longer than one lease must therefore renew it; :class:`Heartbeat` does so from a daemon
thread every ``interval`` seconds until the block ends. A failed renewal is logged and retried at the next
beat: the store may be briefly unreachable, and the claim is still ours until its lease runs out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["Heartbeat"]

log = logging.getLogger("receiver.leases")


class Heartbeat:
    def __init__(self, renew: Callable[[], Any], interval: float, *, name: str = "lease-heartbeat") -> None:
        self.renew, self.interval, self.name = renew, max(0.05, interval), name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._beat, name=self.name, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
            except Exception as exc:
                log.warning("%s: could not renew a lease (will retry): %s", self.name, exc)
