"""The HA shape as real processes: a clustered Alertmanager pair and receiver replicas on one PostgreSQL.

Alertmanager peers gossip over ``--cluster.listen-address``/``--cluster.peer`` on loopback (or run split,
``clustered=False``, so that both deliver everything). Each receiver replica is ``receiver serve`` in its own
process, so a test can ``kill -9`` it at any moment and count from the database what survived.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.support.realparts import RunningProcess, free_port, wait_until

__all__ = ["ReceiverProcess", "start_alertmanager_pair", "start_receiver_process"]

REPO = Path(__file__).resolve().parents[2]


def _alertmanager_binary() -> str:
    import shutil

    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("Alertmanager is not installed: run scripts/setup.sh")


def start_alertmanager_pair(
    workdir: Path, config: dict[str, Any] | list[dict[str, Any]], *, clustered: bool = True
) -> list[RunningProcess]:
    """Two Alertmanagers; ``config`` is one config for both or one per peer. Clustered peers gossip
    (notification log, silences) on loopback; with ``clustered=False`` each runs alone."""
    configs = config if isinstance(config, list) else [config, config]
    ports = [free_port(), free_port()]
    cluster_ports = [free_port(), free_port()]
    peers: list[RunningProcess] = []
    for n in range(2):
        home = workdir / f"alertmanager-{n}"
        home.mkdir(parents=True, exist_ok=True)
        (home / "alertmanager.yml").write_text(json.dumps(configs[n]))
        argv = [
            _alertmanager_binary(),
            f"--config.file={home / 'alertmanager.yml'}",
            f"--storage.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports[n]}",
            f"--web.external-url=http://127.0.0.1:{ports[n]}",
        ]
        if clustered:
            argv += [
                f"--cluster.listen-address=127.0.0.1:{cluster_ports[n]}",
                f"--cluster.peer=127.0.0.1:{cluster_ports[1 - n]}",
                "--cluster.settle-timeout=2s",
                "--cluster.gossip-interval=100ms",
                "--cluster.pushpull-interval=2s",
                "--cluster.peer-timeout=2s",  # how long a peer waits for the one before it to notify
            ]
        else:
            argv.append("--cluster.listen-address=")
        log_path = home / "alertmanager.log"
        process = subprocess.Popen(argv, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=home)
        peer = RunningProcess(
            f"alertmanager-{n}", process, f"http://127.0.0.1:{ports[n]}", ports[n], home, log_path
        )
        peers.append(peer)
    for peer in peers:
        wait_until(partial(_ready, peer.url), timeout=30, interval=0.1, message=f"{peer.name} ready")
    if clustered:
        wait_until(
            lambda: all(
                len(requests.get(p.url + "/api/v2/status", timeout=2).json()["cluster"].get("peers") or [])
                == 2
                for p in peers
            ),
            timeout=30,
            message="the Alertmanager pair to see each other",
        )
    return peers


def _ready(url: str) -> bool:
    return requests.get(url + "/-/ready", timeout=1).status_code == 200


@dataclass
class ReceiverProcess:
    """One ``receiver serve`` replica (its own process, config file and log)."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    config_path: Path
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_receiver_process(workdir: Path, name: str, settings: dict[str, Any]) -> ReceiverProcess:
    """Write ``settings`` as the replica's config file (host/port filled in) and start ``receiver serve``."""
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    port = int(settings.get("port") or free_port())
    config = {"host": "127.0.0.1", "port": port, "replica": name, "data_dir": str(home / "data"), **settings}
    config_path = home / "receiver.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = home / "receiver.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "receiver.cli", "serve", "--config", str(config_path)],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env=env,
    )
    replica = ReceiverProcess(name, process, f"http://127.0.0.1:{port}", config_path, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"receiver {name} exited with {process.returncode}:\n{replica.log()[-3000:]}")
        return requests.get(replica.url + "/readyz", timeout=1).status_code == 200

    wait_until(ready, timeout=60, interval=0.2, message=f"receiver {name} ready")
    return replica
