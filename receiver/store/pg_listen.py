"""LISTEN on PostgreSQL in a daemon thread: how one replica's commit wakes another replica's worker.

The webhook's commit fires a trigger that NOTIFYs ``receiver_work`` (migration 0009). A worker in another
process (a replica behind another Alertmanager peer, or the worker of a web-only replica) would otherwise
see the row only at its next poll. The listener holds one connection of its own outside the pool (LISTEN
is per session), and reconnects with backoff while the database is away; after each (re)connect it calls
back once, for anything committed while it was not listening. The signal is only a hint: correctness
never depends on it, because workers still poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["PgListener"]

log = logging.getLogger("receiver.store.listen")


class PgListener:
    def __init__(
        self,
        connect: Callable[[], Any],
        channel: str,
        on_notify: Callable[[], None],
        *,
        description: str,
        poll: float = 1.0,
        max_backoff: float = 10.0,
    ) -> None:
        if not channel.isidentifier():
            raise ValueError(f"channel must be an SQL identifier, got {channel!r}")
        self.connect, self.channel, self.on_notify = connect, channel, on_notify
        self.description, self.poll, self.max_backoff = description, poll, max_backoff
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> PgListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff, failing = 0.5, False
        while not self._stop.is_set():
            conn = None
            try:
                conn = self.connect()
                conn.execute(f"LISTEN {self.channel}")
                if failing:
                    log.info("listening on %s again (%s)", self.channel, self.description)
                backoff, failing = 0.5, False
                self.on_notify()  # whatever was committed while nobody listened
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=self.poll):
                        self.on_notify()
            except Exception as exc:  # the database went away, or never came: retry, quietly after once
                if not failing:
                    log.warning(
                        "cannot listen on %s (%s): %s; retrying (workers poll meanwhile)",
                        self.channel,
                        self.description,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    )
                failing = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # closing a broken connection
                        log.debug("closing the listen connection failed", exc_info=True)
