"""Child processes of the drill stack: find a binary, spawn it in its own process group, wait until healthy.

Split from :mod:`receiver.drill.stack`, which decides what to start with which configuration; this module
only knows how to run a process so that stopping it takes down everything it spawned (also reused by
``bench/alert_storm.py`` through the names :mod:`receiver.drill.stack` re-exports).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from receiver.drill.progress import Progress
from receiver.errors import DrillError

__all__ = ["ManagedProcess", "find_binary", "free_port", "spawn", "wait_healthy"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(*names: str) -> str:
    """The first of ``names`` on PATH; raises :class:`~receiver.errors.DrillError` (``StackError``)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise DrillError(
        f"none of {', '.join(names)} is on PATH; run scripts/setup.sh "
        "(installs Debian's prometheus and prometheus-alertmanager)"
    )


@dataclass
class ManagedProcess:
    """A child in its own process group, logging to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait(timeout=5)
        else:
            self.signal_group(signal.SIGKILL)  # stray grandchildren, if any

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def spawn(name: str, argv: list[str], url: str, *, logs_dir: Path, cwd: Path) -> ManagedProcess:
    """Start ``argv`` in its own session and process group, output appended to ``logs_dir/NAME.log``."""
    log_path = logs_dir / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    return ManagedProcess(name, process, url, log_path)


def wait_healthy(
    processes: Mapping[str, ManagedProcess],
    checks: Mapping[str, tuple[str, dict[str, str]]],
    progress: Progress,
    *,
    timeout: float,
    logs_dir: Path,
) -> None:
    """Poll each check's URL (with its headers) until it answers 200; raise when its process exits first
    or when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    while pending:
        for name in list(pending):
            proc = processes[name]
            if not proc.alive():
                raise DrillError(
                    f"{name} exited with {proc.process.returncode} while starting; "
                    f"log {proc.log_path}:\n{proc.log_tail()}"
                )
            url, headers = pending[name]
            try:
                if requests.get(url, headers=headers, timeout=1).status_code == 200:
                    del pending[name]
            except requests.RequestException:
                pass
        if not pending:
            break
        if time.monotonic() > deadline:
            names = ", ".join(sorted(pending))
            raise DrillError(f"not healthy after {timeout:g}s: {names} (logs in {logs_dir})")
        progress.stage("waiting until healthy", f"{len(pending)} pending: {', '.join(sorted(pending))}")
        time.sleep(0.2)
    progress.note(f"healthy: {', '.join(sorted(checks))}")
