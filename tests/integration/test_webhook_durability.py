"""Durability: what was answered 200 survives a stop before processing and a SIGKILL of `receiver serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from receiver.store import open_store
from tests.support.payloads import alert, notification, write_runbooks
from tests.support.realparts import free_port, wait_until
from tests.support.receiver_server import WEBHOOK_TOKEN, make_settings, start_receiver

HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
RECEIVER_BIN = str(Path(sys.executable).parent / "receiver")


def test_restart_resumes_unprocessed_notifications(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", write_runbooks(tmp_path / "rb"))
    paused = start_receiver(settings, start_worker=False)  # accepts, never processes
    try:
        for model in ("a", "b", "c"):
            body = json.dumps(notification(alert(model=model))).encode()
            assert requests.post(paused.url + "/api/v1/alerts", data=body, headers=HOOK, timeout=5).ok
    finally:
        paused.stop()
    resumed = start_receiver(settings)
    try:
        store = resumed.context.store
        wait_until(lambda: store.pending_count() == 0, timeout=10, message="backlog drained")
        assert sorted(i.model or "" for i in store.list_incidents()) == ["a", "b", "c"]
    finally:
        resumed.stop()


def test_sigkill_after_200_loses_nothing(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    (tmp_path / "token").write_text(WEBHOOK_TOKEN)
    argv = [
        RECEIVER_BIN,
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--runbooks",
        str(write_runbooks(tmp_path / "rb")),
        "--webhook-token-file",
        str(tmp_path / "token"),
    ]
    env = {**os.environ, "RECEIVER_WORKER_POLL_INTERVAL": "0.2"}
    log = (tmp_path / "receiver.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(url + "/readyz", timeout=1).ok, timeout=15, message="receiver ready")
        ids = []
        for i in range(20):
            body = json.dumps(notification(alert(model=f"m{i}"))).encode()
            response = requests.post(url + "/api/v1/alerts", data=body, headers=HOOK, timeout=5)
            assert response.status_code == 200
            ids.append(response.json()["id"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()
    store = open_store(data)
    try:
        rows = store.connection().execute("SELECT id FROM notifications ORDER BY id").fetchall()
        assert [r[0] for r in rows] == ids  # every acknowledged body is on disk
    finally:
        store.close()
    restarted = start_receiver(make_settings(data, tmp_path / "rb"))
    try:
        resumed = restarted.context.store
        # (a notification the killed worker was responding to stays leased for up to 30 s; its incident
        # changes are already committed, which is what matters here)
        wait_until(lambda: len(resumed.list_incidents()) == 20, timeout=10, message="resumed")
        assert resumed.next_received() is None
    finally:
        restarted.stop()


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            RECEIVER_BIN,
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
            "--runbooks",
            str(write_runbooks(tmp_path / "rb")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok,
            timeout=15,
            message="receiver up",
        )
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    text = output.decode()
    assert '"msg": "stopped"' in text
    token = (tmp_path / "d" / "webhook-token").read_text().strip()
    assert token not in text and "webhook-token" in text
