"""Real Prometheus, Alertmanager and HTTP sinks for tests, started on loopback with temporary dirs.

Every helper returns an object with a ``url`` and a ``stop()``; the pytest fixtures in ``tests/conftest.py``
make sure they are stopped. Nothing here is mocked: these are the Debian binaries
(``/usr/bin/prometheus``, ``/usr/bin/prometheus-alertmanager``) run as child processes.

Two version pairs are supported (:data:`PARTS`): ``bookworm`` (Alertmanager 0.25, Prometheus 2.42, the
machine's packages) and ``trixie`` (Alertmanager 0.28, Prometheus 2.53, unpacked by ``scripts/setup.sh``
into ``.cache/trixie/root``). :func:`parts_path` gives the ``PATH`` that selects a pair; the ``real_parts``
fixture in ``tests/conftest.py`` sets it for the tests that start these binaries.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

__all__ = [
    "PARTS",
    "PartsVersions",
    "RecordedRequest",
    "RecordingServer",
    "RunningProcess",
    "free_port",
    "parts_path",
    "start_alertmanager",
    "start_prometheus",
    "wait_until",
]


REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PartsVersions:
    """One supported pair of Alertmanager and Prometheus versions and where its binaries are."""

    name: str
    alertmanager: str
    prometheus: str
    bin_dir: Path | None  # None: the machine's own packages, found on PATH


PARTS = {
    "bookworm": PartsVersions("bookworm", "0.25", "2.42", None),
    "trixie": PartsVersions("trixie", "0.28", "2.53", REPO_ROOT / ".cache/trixie/root/usr/bin"),
}


def parts_path(parts: PartsVersions, path: str) -> str:
    """``path`` (a ``PATH`` value) with the pair's binaries first; refuses a pair that is not installed."""
    if parts.bin_dir is None:
        return path
    missing = [b for b in ("prometheus", "prometheus-alertmanager") if not (parts.bin_dir / b).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{parts.name} binaries {missing} are not in {parts.bin_dir}; run scripts/setup.sh"
        )
    return f"{parts.bin_dir}{os.pathsep}{path}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, message: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise ``TimeoutError`` naming ``message``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message} (last error: {last_error})")


@dataclass
class RunningProcess:
    """A child process serving HTTP on ``url``; its output goes to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    port: int
    workdir: Path
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        f"none of {names} is on PATH; run scripts/setup.sh (installs Debian's prometheus packages)"
    )


def _spawn(
    name: str, argv: list[str], workdir: Path, port: int, ready_path: str, timeout: float = 30.0
) -> RunningProcess:
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir)
    running = RunningProcess(name, process, f"http://127.0.0.1:{port}", port, workdir, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{running.log()[-3000:]}")
        return requests.get(running.url + ready_path, timeout=1).status_code == 200

    try:
        wait_until(ready, timeout=timeout, interval=0.1, message=f"{name} to be ready")
    except BaseException:
        running.stop()
        raise
    return running


def start_prometheus(
    workdir: Path,
    config: str | dict[str, Any],
    *,
    rule_files: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    port: int | None = None,
) -> RunningProcess:
    """Start Prometheus (2.42 or 2.53: :data:`PARTS`) with ``config`` (YAML text or a dict) and rule files.

    Rule files are written into ``workdir`` under their given names; reference them from the config by name.
    The admin API and lifecycle endpoint are enabled so tests can reload and snapshot.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for rule_name, text in (rule_files or {}).items():
        (workdir / rule_name).write_text(text)
    config_text = config if isinstance(config, str) else json.dumps(config)
    (workdir / "prometheus.yml").write_text(config_text)
    port = port or free_port()
    argv = [
        _binary("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
        *(extra_args or []),
    ]
    return _spawn("prometheus", argv, workdir, port, "/-/ready")


def start_alertmanager(
    workdir: Path,
    config: str | dict[str, Any],
    *,
    port: int | None = None,
    extra_args: list[str] | None = None,
) -> RunningProcess:
    """Start Alertmanager (0.25 or 0.28: :data:`PARTS`) with ``config``, no cluster, data in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_text = config if isinstance(config, str) else json.dumps(config)
    (workdir / "alertmanager.yml").write_text(config_text)
    port = port or free_port()
    argv = [
        _binary("prometheus-alertmanager", "alertmanager"),
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        *(extra_args or []),
    ]
    return _spawn("alertmanager", argv, workdir, port, "/-/ready")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingServer:
    """A real HTTP server on loopback that records every request (a chat, pager or webhook sink).

    ``fail_first`` makes the first N requests answer ``fail_status`` (to exercise retries);
    ``status`` is the answer afterwards.
    """

    fail_first: int = 0
    fail_status: int = 503
    status: int = 200
    response_body: bytes = b'{"ok": true}'
    requests: list[RecordedRequest] = field(default_factory=list)
    attempts: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with recorder._lock:
                    recorder.attempts += 1
                    failing = recorder.attempts <= recorder.fail_first
                    if not failing:
                        recorder.requests.append(
                            RecordedRequest(
                                self.command, self.path, dict(self.headers.items()), body, time.time()
                            )
                        )
                status = recorder.fail_status if failing else recorder.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(recorder.response_body)))
                self.end_headers()
                self.wfile.write(recorder.response_body)

            do_POST = do_PUT = do_GET = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.requests]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
