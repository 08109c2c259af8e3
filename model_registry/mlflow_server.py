"""Start a real local ``mlflow server`` (SQLite backend store, local artifact root, loopback) as a child.

Used by ``receiver drill --registry mlflow``, ``bench/registry.py --backend mlflow`` and the tests' session
fixture, so all three run the same server the same way. It needs the ``mlflow`` extra; without it
:func:`mlflow_server_argv` raises a :class:`RegistryError` saying how to install it. Startup takes seconds
(share one server where you can).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from incident_common.errors import RegistryError, RegistryUnavailableError

__all__ = ["LocalMLflowServer", "free_port", "mlflow_server_argv", "start_mlflow_server"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlflow_server_argv(workdir: Path, port: int) -> list[str]:
    """``mlflow server`` on 127.0.0.1:``port`` with its store and artifacts under ``workdir``."""
    if importlib.util.find_spec("mlflow") is None:
        raise RegistryError(
            "the MLflow server needs the 'mlflow' extra: pip install "
            "'ml-incident-runbooks[mlflow]' (scripts/setup.sh installs it)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    # MLflow 3 also starts job consumers (GenAI evaluation jobs) unless told not to: not needed here
    return [
        "env",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{(workdir / 'mlflow.db').resolve()}",
        "--default-artifact-root",
        str((workdir / "artifacts").resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


@dataclass
class LocalMLflowServer:
    """A running ``mlflow server``; ``registry_url`` is what ``open_registry`` takes."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    workdir: Path
    log_path: Path

    @property
    def registry_url(self) -> str:
        return "mlflow+" + self.url

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server and its workers (its own process group)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def wait_ready(url: str, process: subprocess.Popen[bytes] | None, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            raise RegistryUnavailableError(f"mlflow server exited with {process.returncode}:\n{tail}")
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RegistryUnavailableError(f"mlflow server at {url} not ready after {timeout:g}s (log {log_path})")


def start_mlflow_server(
    workdir: Path, *, port: int | None = None, timeout: float = 90.0
) -> LocalMLflowServer:
    """Start the server and wait for ``/health``; on failure it is stopped and the error names its log."""
    port = port or free_port()
    argv = mlflow_server_argv(workdir, port)
    log_path = workdir / "mlflow-server.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
    server = LocalMLflowServer(process, f"http://127.0.0.1:{port}", port, workdir, log_path)
    try:
        wait_ready(server.url, process, timeout, log_path)
    except BaseException:
        server.stop()
        raise
    return server
