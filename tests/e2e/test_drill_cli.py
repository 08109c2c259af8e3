"""The `receiver drill` command: argument errors (fast); Ctrl-C stops every process it started (slow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from receiver.cli import main
from receiver.drill.scenarios import scenario_names

REPO = Path(__file__).resolve().parents[2]


def test_list_names_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "--list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "bad-release",
        "latency-spike",
        "feature-drift",
        "prediction-shift",
        "auc-drop",
        "toxicity",
        "data-quality",
        "server-down",
    ):
        assert name in out
    assert set(scenario_names()) >= {"bad-release", "server-down"}


def test_unknown_scenario_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "--scenario", "meteor-strike"]) == 2
    err = capsys.readouterr().err
    assert "meteor-strike" in err and "bad-release" in err


def test_no_scenario_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill"]) == 2
    assert "--scenario" in capsys.readouterr().err


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    workdir = tmp_path / "drill"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "receiver.cli",
            "drill",
            "--scenario",
            "bad-release",
            "--workdir",
            str(workdir),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        # wait until the whole stack runs: the receiver is the last process started
        while time.monotonic() < deadline:
            children = _processes_mentioning(str(workdir))
            if any(
                "receiver.yml" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                for p in children
                if Path(f"/proc/{p}").exists()
            ):
                break
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.3)
        else:
            pytest.fail("the drill stack did not start")
        assert len(_processes_mentioning(str(workdir))) >= 4  # model server, prometheus, am, receiver
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 130
        time.sleep(0.5)
        assert _processes_mentioning(str(workdir)) == [], "processes left behind after Ctrl-C"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
