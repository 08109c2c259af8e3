"""Progress while a drill waits: one updating line on a terminal, plain lines (on stage changes) otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``stage(name)`` starts a stage; ``tick(detail)`` refreshes the line; ``done()`` ends it.

    On a TTY the line is rewritten in place (``\\r`` + clear to end of line) with the stage, its detail
    and the elapsed time; elsewhere (CI logs, pipes) only stage changes are printed, one per line, so
    logs stay readable. ``quiet`` prints nothing (``--json``).
    """

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.started = time.monotonic()
        self._stage = ""
        self._detail = ""
        self._dirty = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stage(self, name: str, detail: str = "") -> None:
        if name == self._stage and detail == self._detail:
            return
        changed = name != self._stage
        self._stage, self._detail = name, detail
        if self.quiet:
            return
        if self.tty:
            self._render()
        elif changed:
            self._line(f"[{self.elapsed():6.1f}s] {name}" + (f": {detail}" if detail else ""))

    def tick(self, detail: str | None = None) -> None:
        if detail is not None:
            self._detail = detail
        if self.tty and not self.quiet:
            self._render()

    def note(self, text: str) -> None:
        """A permanent line (an event worth keeping in the scrollback)."""
        if self.quiet:
            return
        if self.tty and self._dirty:
            self.stream.write("\r\x1b[2K")
            self._dirty = False
        self._line(f"[{self.elapsed():6.1f}s] {text}")
        if self.tty:
            self._render()

    def done(self) -> None:
        if self.tty and self._dirty and not self.quiet:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
        self._dirty = False

    def _render(self) -> None:
        text = f"[{self.elapsed():6.1f}s] {self._stage}" + (f" - {self._detail}" if self._detail else "")
        self.stream.write("\r\x1b[2K" + text[:200])
        self.stream.flush()
        self._dirty = True

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
