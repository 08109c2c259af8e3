"""The ``model-server`` console script: bootstrap, then serve as a real subprocess with a token file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from tests.support.realparts import free_port, wait_until

BIN = Path(sys.executable).parent


def test_bootstrap_then_serve_subprocess(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    argv = [
        str(BIN / "model-server"),
        "bootstrap",
        "--registry-db",
        str(db),
        "--model",
        "demo",
        "--artifacts",
        str(tmp_path / "art"),
    ]
    boot = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert boot.returncode == 0, boot.stderr
    assert "v1 (validation AUC" in boot.stdout and (tmp_path / "art" / "demo-v2.joblib").exists()
    token_file = tmp_path / "token"
    token_file.write_text("tok-123\n")
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "model-server"),
            "--registry-db",
            str(db),
            "--model",
            "demo",
            "--port",
            str(port),
            "--admin-token-file",
            str(token_file),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_until(
            lambda: requests.get(url + "/healthz", timeout=1).json(),
            timeout=30,
            message="model-server healthy",
        )
        assert health["active_version"] == "v1"
        faults = requests.post(
            url + "/admin/faults",
            json={"latency_seconds": 0.05},
            headers={"Authorization": "Bearer tok-123"},
            timeout=5,
        )
        assert faults.status_code == 200
        assert (
            requests.get(
                url + "/admin/faults", headers={"Authorization": "Bearer wrong"}, timeout=5
            ).status_code
            == 401
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "tok-123" not in (tmp_path / "server.log").read_text()


def test_serving_an_empty_registry_names_the_model_and_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    out = subprocess.run(
        [str(BIN / "model-server"), "serve", "--registry-db", str(db), "--model", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "'demo' is not in the registry" in lines[0] and "model-server bootstrap" in lines[0]
    assert "model-registry register" in lines[0]
