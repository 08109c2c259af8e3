"""``receiver serve`` as a child process on a loopback port with a temp data dir, as operators run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.realparts import free_port, wait_until

__all__ = ["SLOW_ATTACK_LINE", "ServeProcess", "hold_slow_senders", "start_serve"]

REPO = Path(__file__).resolve().parents[2]
HOOK_TOKEN = "hook-token-for-serve-tests"
ADMIN_TOKEN = "admin-token-for-serve-tests"
SLOW_ATTACK_LINE = b"POST /api/v1/alerts HTTP/1.1\r\nHost: receiver\r\nX-Slow: "


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path

    @property
    def hook_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"}

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def post(self, body: Any, timeout: float = 5) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return requests.post(
            self.url + "/api/v1/alerts", data=data, headers=self.hook_headers, timeout=timeout
        )

    def get(self, path: str, timeout: float = 5) -> requests.Response:
        return requests.get(self.url + path, headers=self.admin_headers, timeout=timeout)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            output = self.process.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            self.process.kill()
            output = self.process.communicate(timeout=5)[0]
        return output.decode(errors="replace")


def start_serve(
    tmp_path: Path, runbooks_dir: Path | None = None, *, token_mode: int = 0o600, **settings: Any
) -> ServeProcess:
    """Start ``receiver serve`` with tokens in files and ``settings`` in its YAML config file."""
    port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "hook-token").write_text(HOOK_TOKEN + "\n")
    (tmp_path / "admin-token").write_text(ADMIN_TOKEN + "\n")
    for name in ("hook-token", "admin-token"):
        (tmp_path / name).chmod(token_mode)
    config = {
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(tmp_path / "data"),
        "runbooks_dir": str(runbooks_dir or REPO / "runbooks"),
        "webhook_token_file": str(tmp_path / "hook-token"),
        "admin_token_file": str(tmp_path / "admin-token"),
        "log_format": "text",
        "worker_poll_interval": 0.2,
        **settings,
    }
    (tmp_path / "receiver.yml").write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "receiver.cli", "serve", "--config", str(tmp_path / "receiver.yml")],
        env={k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    running = ServeProcess(process, f"http://127.0.0.1:{port}", port, tmp_path / "data")

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"receiver serve exited: {running.stop()}")
        try:
            return requests.get(running.url + "/healthz", timeout=1).ok
        except requests.ConnectionError:
            return False

    wait_until(ready, timeout=30, message="receiver serve up")
    return running


def hold_slow_senders(port: int, count: int, seconds: float, interval: float = 2.0) -> int:
    """Keep ``count`` connections trickling one header byte every ``interval`` s for ``seconds``.

    A connection the server drops is reopened at once, as an attacker would. Returns how many were
    reopened (drops seen)."""
    deadline = time.monotonic() + seconds
    conns: list[socket.socket | None] = [None] * count
    reopened = 0

    def open_one() -> socket.socket | None:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=2)
            conn.setblocking(False)
            conn.send(SLOW_ATTACK_LINE)
            return conn
        except OSError:
            return None

    for i in range(count):
        conns[i] = open_one()
    try:
        while time.monotonic() < deadline:
            for i, conn in enumerate(conns):
                try:
                    if conn is None:
                        raise OSError
                    conn.send(b"a")
                except OSError:
                    if conn is not None:
                        conn.close()
                        reopened += 1
                    conns[i] = open_one()
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    finally:
        for conn in conns:
            if conn is not None:
                conn.close()
    return reopened
