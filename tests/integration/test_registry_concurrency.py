"""Several real processes on one real SQLite registry file: racing rollbacks, no lost updates, SIGKILL.

Workers are separate Python interpreters (``sys.executable -c``), not threads, so locking goes through
SQLite's file locks exactly as it does between the receiver and model servers in production.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from model_registry import Registry, RegistryUnavailableError, open_registry

WHO: dict[str, Any] = {"actor": "tester", "reason": "setup"}
REPO = Path(__file__).resolve().parents[2]

ROLLBACK_WORKER = """
import json, sys
from model_registry import ConflictError, open_registry
reg = open_registry(sys.argv[1])
print("ready", flush=True)
try:
    result = reg.rollback("m", actor=sys.argv[2], reason="race", expected_active="v3")
    print(json.dumps({"outcome": "rolled_back", "to": result.to_version}), flush=True)
except ConflictError as exc:
    print(json.dumps({"outcome": "conflict", "message": exc.message}), flush=True)
"""

CHURN_WORKER = """
import sys
from model_registry import open_registry
reg = open_registry(sys.argv[1])
who = sys.argv[2]
for i in range(int(sys.argv[3])):
    if i % 2:
        reg.set_guardrail("m", i % 4, actor=who, reason=f"churn {i}")
    else:
        reg.split("m", {"v1": i % 101, "v2": 100 - i % 101}, actor=who, reason=f"churn {i}")
print("done", flush=True)
"""

# Changes forever, with refusals allowed (they change nothing); killed with SIGKILL by the test.
CRASH_WORKER = """
import random, sys
from model_registry import RegistryError, open_registry
reg = open_registry(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
versions = ["v1", "v2", "v3", "v4"]
print("ready", flush=True)
while True:
    op = rng.randrange(7)
    v = rng.choice(versions)
    try:
        if op == 0:
            reg.promote("m", v, actor="w", reason="crash loop")
        elif op == 1:
            reg.rollback("m", actor="w", reason="crash loop")
        elif op == 2:
            w = rng.choice([10, 25, 50, 75])
            reg.split("m", {v: w, reg.state("m").active_version: 100 - w}, actor="w", reason="crash loop")
        elif op == 3:
            reg.set_mode("m", rng.choice(["normal", "fallback"]), actor="w", reason="crash loop")
        elif op == 4:
            reg.set_guardrail("m", rng.randrange(4), actor="w", reason="crash loop")
        elif op == 5:
            reg.mark_healthy("m", v, actor="w", reason="crash loop")
        else:
            reg.mark_served_healthy("m", v, actor="w", reason="crash loop")
    except RegistryError:
        pass
"""


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """One stdout line, bounded in time."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"worker gave no output within {timeout}s; stderr: {err}")
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"worker exited early (rc={proc.returncode}): {err}")
    return line.strip()


def released(path: Path, *versions: str) -> Registry:
    reg = open_registry(path)
    for v in versions:
        reg.register("m", v, artifact_path=f"/models/{v}", baseline=None, **WHO)
        reg.promote("m", v, **WHO)
    return reg


def test_two_processes_racing_to_roll_back_only_one_rolls_back(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    reg = released(db, "v1", "v2", "v3")
    # Hold the write lock so both workers are certainly waiting on it at the same time, then let go.
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    workers = [spawn(ROLLBACK_WORKER, str(db), f"proc{i}") for i in range(2)]
    try:
        for w in workers:
            assert read_line(w) == "ready"
        time.sleep(0.3)  # both are now inside rollback(), blocked in BEGIN IMMEDIATE
        assert reg.generation("m") == 6  # nothing happened while the lock was held
        blocker.execute("COMMIT")
        outcomes = [json.loads(read_line(w)) for w in workers]
    finally:
        blocker.close()
        for w in workers:
            w.kill()
            w.communicate(timeout=10)
    assert sorted(o["outcome"] for o in outcomes) == ["conflict", "rolled_back"]
    rolled = next(o for o in outcomes if o["outcome"] == "rolled_back")
    conflict = next(o for o in outcomes if o["outcome"] == "conflict")
    assert rolled["to"] == "v2"
    assert "active version is 'v2', not the expected 'v3'" in conflict["message"]
    state = reg.state("m")
    assert state.active_version == "v2" and state.traffic == {"v2": 100.0}
    assert [e.action for e in reg.history("m")].count("rollback") == 1
    assert reg.version("m", "v2").unhealthy is False
    assert reg.check() == []


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    reg = released(db, "v1", "v2")
    start = reg.generation("m")
    n = 60
    workers = [spawn(CHURN_WORKER, str(db), f"writer{i}", str(n)) for i in range(2)]
    for w in workers:
        assert read_line(w, timeout=60) == "done"
        w.communicate(timeout=10)
        assert w.returncode == 0
    assert reg.generation("m") == start + 2 * n
    entries = reg.history("m", limit=1000)
    assert sum(1 for e in entries if e.actor == "writer0") == n
    assert sum(1 for e in entries if e.actor == "writer1") == n
    for newer, older in itertools.pairwise(entries):
        assert newer.before == older.after  # strictly serialised: every change saw the previous one
    assert reg.check() == []


def test_sigkill_mid_change_leaves_a_valid_registry(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    reg = released(db, "v1", "v2", "v3", "v4")
    rng = random.Random(1234)
    rounds, progressed = 12, 0
    for i in range(rounds):
        before = reg.generation("m")
        worker = spawn(CRASH_WORKER, str(db), str(i))
        assert read_line(worker) == "ready"
        time.sleep(rng.uniform(0.05, 0.35))
        os.kill(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=10)
        assert worker.returncode == -signal.SIGKILL
        problems = reg.check()
        assert problems == [], f"round {i}: {problems}"
        state = reg.state("m")
        assert state.active_version in {"v1", "v2", "v3", "v4"}
        assert sum(state.traffic.values()) == pytest.approx(100.0)
        progressed += reg.generation("m") > before
    assert progressed >= rounds // 2, "the worker hardly changed anything before being killed"
    # the registry still takes changes after all those kills
    reg.set_mode("m", "normal", actor="tester", reason="after crashes")
    assert reg.check() == []


def test_a_lock_held_too_long_gives_registry_unavailable_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    released(db, "v1", "v2")
    impatient = open_registry(db, busy_timeout=0.2)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(RegistryUnavailableError, match="database is locked"):
            impatient.rollback("m", **WHO)
        assert time.monotonic() - started < 5.0
        assert impatient.state("m").active_version == "v2"  # reads are not blocked by a writer (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert impatient.generation("m") == 4
    assert impatient.rollback("m", **WHO).to_version == "v1"
