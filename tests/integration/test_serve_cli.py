"""``receiver serve`` as operators run it: a subprocess on waitress, settings from a config file, the
environment overriding the file, tokens from files, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.realparts import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


def test_serve_reads_config_file_env_and_token_files(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "hook-token").write_text("hook-secret\n")
    (tmp_path / "admin-token").write_text("admin-secret\n")
    config = tmp_path / "receiver.yml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"runbooks_dir: {REPO / 'runbooks'}\n"
        f"webhook_token_file: {tmp_path / 'hook-token'}\n"
        f"admin_token_file: {tmp_path / 'admin-token'}\n"
        "port: 1\n"  # overridden by the environment below
        "log_format: text\n"
    )
    env = {**os.environ, "RECEIVER_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "receiver.cli", "serve", "--config", str(config), "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(url + "/readyz", timeout=1).ok, timeout=30, message="receiver ready")
        assert requests.get(url + "/readyz", timeout=5).json()["runbooks"] >= 8
        hook = requests.post(
            url + "/api/v1/alerts",
            data="{}",
            timeout=5,
            headers={"Authorization": "Bearer hook-secret", "Content-Type": "application/json"},
        )
        assert hook.status_code == 400  # authenticated, then validated
        admin = requests.get(
            url + "/api/v1/incidents", timeout=5, headers={"Authorization": "Bearer admin-secret"}
        )
        assert admin.status_code == 200
        assert (tmp_path / "data" / "receiver.db").exists()
        assert not (
            tmp_path / "data" / "webhook-token"
        ).exists()  # the configured file is used, none generated
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert "hook-secret" not in output and "admin-secret" not in output


def test_serve_refuses_bad_settings_with_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yml"
    config.write_text("port: lots\nwebhok_token_file: /nope\n")
    result = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "webhok_token_file" in result.stderr + result.stdout
