"""``receiver db upgrade|check|prune`` and the review of a pruned incident, on SQLite and PostgreSQL 15.

The CLI runs through :func:`receiver.cli.main` (and once as a real subprocess); user mistakes and an
unreachable database must give one line on stderr and an exit status, never a traceback or the password.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from receiver.cli import main
from receiver.review import render_review
from receiver.store import open_database_store, open_store
from receiver.store.facade import SQLiteStore
from receiver.store.migrate import MIGRATIONS_ROOT
from tests.support.incident_history import DAY, FakeClock, make_incident
from tests.support.payloads import write_runbooks
from tests.support.receiver_server import ADMIN_TOKEN, make_settings, start_receiver

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
NEWEST = max(int(p.name[:4]) for p in (MIGRATIONS_ROOT / "sqlite").glob("*.sql"))
NEWEST_NAME = max((MIGRATIONS_ROOT / "sqlite").glob("*.sql")).stem  # e.g. 0008_people_in_the_loop


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECEIVER_DATABASE_URL", "RECEIVER_CONFIG", "RECEIVER_DATA_DIR", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("receiver db: ")
    return lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sqlite_upgrade_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    status, _, err = run(capsys, "db", "check", "--data-dir", str(data))
    assert status == 1 and "no database at" in one_line_error(err)
    assert not (data / "receiver.db").exists()  # check never creates one

    status, out, _ = run(capsys, "db", "upgrade", "--data-dir", str(data))
    assert status == 0
    assert "applied 0001_core" in out and f"applied {NEWEST_NAME}" in out
    assert f"upgraded from schema version 0 to {NEWEST}" in out
    status, out, _ = run(capsys, "db", "upgrade", "--data-dir", str(data))
    assert status == 0 and f"is current (schema version {NEWEST})" in out and "applied" not in out
    status, out, _ = run(capsys, "db", "check", "--data-dir", str(data))
    assert status == 0 and "reachable and current" in out


def test_sqlite_behind_and_newer_databases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    older = tmp_path / "older-migrations"
    older.mkdir()
    for path in (MIGRATIONS_ROOT / "sqlite").glob("*.sql"):
        if int(path.name[:4]) < NEWEST:
            shutil.copy(path, older / path.name)
    data = tmp_path / "data"
    data.mkdir()
    store = SQLiteStore(data / "receiver.db", migrations_dir=older)
    store.migrate()
    store.close()

    status, _, err = run(capsys, "db", "check", "--data-dir", str(data))
    line = one_line_error(err)
    assert status == 1 and f"schema version {NEWEST - 1}" in line and "run 'receiver db upgrade'" in line
    status, _, err = run(capsys, "db", "prune", "--older-than", "90d", "--data-dir", str(data))
    assert status == 2 and "run 'receiver db upgrade'" in one_line_error(err)
    status, out, _ = run(capsys, "db", "upgrade", "--data-dir", str(data))
    assert status == 0 and out.splitlines()[0] == f"applied {NEWEST_NAME}"

    with sqlite3.connect(data / "receiver.db") as conn:
        conn.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 'x')")
    for action in ("check", "upgrade"):
        status, _, err = run(capsys, "db", action, "--data-dir", str(data))
        assert status == 2 and "newer than this receiver knows" in one_line_error(err)


def test_prune_then_the_review_api_and_cli_serve_the_archived_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    clock = FakeClock(time.time() - 100 * DAY)
    store = open_store(data, clock=clock)
    old = make_incident(store, clock, "fraud")
    clock.now = time.time() - 10 * DAY
    recent = make_incident(store, clock, "ranker")
    review_before = render_review(store.get_incident(old))
    store.close()

    status, out, _ = run(capsys, "db", "prune", "--older-than", "90d", "--data-dir", str(data))
    assert status == 0
    assert "older than 90d" in out and "1 notification bodies, 0 rejected bodies, 1 closed incidents" in out
    status, out, _ = run(capsys, "db", "prune", "--older-than", "90d", "--data-dir", str(data))
    assert status == 0 and "0 notification bodies, 0 rejected bodies, 0 closed incidents" in out

    status, out, _ = run(capsys, "review", str(old), "--data-dir", str(data))
    assert status == 0 and out == review_before
    status, out, _ = run(capsys, "review", str(recent), "--data-dir", str(data))
    # not pruned: rendered live from its timeline (Markdown-escaped: traffic\\_split)
    assert status == 0 and ("traffic_split" in out or "traffic\\_split" in out)

    running = start_receiver(make_settings(data, write_runbooks(tmp_path / "runbooks"), responses=False))
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        answer = requests.get(f"{running.url}/api/v1/incidents/{old}/review", headers=headers, timeout=5)
        assert answer.status_code == 200 and answer.text == review_before
        assert answer.headers["Content-Type"].startswith("text/markdown")
        shown = requests.get(f"{running.url}/api/v1/incidents/{old}", headers=headers, timeout=5)
        assert shown.status_code == 200 and shown.json()["incident"]["state"] == "closed"  # the summary
        missing = requests.get(f"{running.url}/api/v1/incidents/9999/review", headers=headers, timeout=5)
        assert missing.status_code == 404
    finally:
        running.stop()


def test_prune_uses_the_retention_setting_and_refuses_bad_ages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    clock = FakeClock(time.time() - 40 * DAY)
    store = open_store(data, clock=clock)
    make_incident(store, clock, "fraud")
    store.close()
    config = tmp_path / "receiver.yml"
    config.write_text("retention_days: 90\n")
    status, out, _ = run(capsys, "db", "prune", "--config", str(config), "--data-dir", str(data))
    assert status == 0 and "older than 90d" in out and "0 closed incidents" in out
    config.write_text("retention_days: 30\n")
    status, out, _ = run(capsys, "db", "prune", "--config", str(config), "--data-dir", str(data))
    assert status == 0 and "older than 30d" in out and "1 closed incidents" in out
    config.write_text("retention_days: 0\n")
    status, out, _ = run(capsys, "db", "prune", "--config", str(config), "--data-dir", str(data))
    assert status == 0 and "nothing pruned: retention_days is 0" in out

    for bad, message in (
        ("5x", "not a Prometheus duration"),
        ("1h", "at least 1 day"),
        ("90", "not a Prometheus duration"),
    ):
        status, _, err = run(capsys, "db", "prune", "--older-than", bad, "--data-dir", str(data))
        assert status == 2 and message in one_line_error(err)
    status, _, err = run(capsys, "db", "prune", "--older-than", "90d", "--data-dir", str(tmp_path / "none"))
    assert status == 2 and "no database at" in one_line_error(err)
    config.write_text("retention_days: -1\n")
    status, _, err = run(capsys, "db", "check", "--config", str(config), "--data-dir", str(data))
    assert status == 2 and "retention_days" in one_line_error(err)


def test_outbox_lists_what_is_undelivered_and_requeues_a_dead_letter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    store = open_store(data)
    now = time.time()
    store.outbox.enqueue("7", "ml-incidents", '{"text": "opened"}', "m1", now - 600)
    store.outbox.enqueue("7", "pager", '{"p": 1}', "m2", now - 60)
    [dead] = store.outbox.select(channel="ml-incidents")
    store.outbox.mark_failed(dead.id, 8, now - 500, "HTTP 410: channel_not_found", 410)
    store.close()
    where = ("--data-dir", str(data))

    status, out, _ = run(capsys, "db", "outbox", *where)
    lines = out.splitlines()
    assert status == 0 and len(lines) == 2
    assert lines[0].startswith(f"{dead.id}\tfailed\tchannel ml-incidents\tincident 7")  # oldest first
    assert "attempts 8 HTTP 410" in lines[0] and "channel_not_found" in lines[0]
    assert "\tpending\tchannel pager" in lines[1]
    status, out, _ = run(capsys, "db", "outbox", "--failed", *where)
    assert status == 0 and out.splitlines() == lines[:1]

    status, _, err = run(capsys, "db", "requeue", str(dead.id), "9999", *where)
    assert status == 2 and "9999 is not a failed message" in one_line_error(err)
    status, out, _ = run(capsys, "db", "requeue", str(dead.id), *where)
    assert status == 0 and out.startswith(f"requeued {dead.id} as ") and "(channel ml-incidents)" in out
    store = open_store(data)
    try:
        pending = store.outbox.select(status="pending", channel="ml-incidents")
        assert [m.payload for m in pending] == [{"text": "opened"}]  # the copy, at the end of its channel
    finally:
        store.close()
    status, _, err = run(capsys, "db", "requeue", str(pending[0].id), *where)
    assert status == 2 and "is not a failed message" in one_line_error(err)  # pending: not a dead letter


def test_postgresql_upgrade_check_prune_never_show_the_password(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the test server trusts loopback, so any password is accepted: the point is that none is printed
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2-secret@")
    status, out, err = run(capsys, "db", "check", "--database-url", url)
    assert status == 1 and "run 'receiver db upgrade'" in one_line_error(err)
    status, out, err = run(capsys, "db", "upgrade", "--database-url", url)
    assert status == 0 and f"applied {NEWEST_NAME}" in out and "postgres:***@" in out
    status, out2, err2 = run(capsys, "db", "check", "--database-url", url)
    assert status == 0 and "reachable and current" in out2

    clock = FakeClock(time.time() - 100 * DAY)
    store = open_database_store(pg_url, clock=clock)
    incident = make_incident(store, clock, "fraud")
    review_before = render_review(store.get_incident(incident))
    store.close()
    status, out3, err3 = run(capsys, "db", "prune", "--older-than", "12w", "--database-url", url)
    assert status == 0 and "1 closed incidents" in out3
    store = open_database_store(pg_url)
    try:
        archived = store.retention.archived_review(incident)
        assert archived is not None and archived.markdown == review_before
    finally:
        store.close()
    assert "hunter2" not in out + err + out2 + err2 + out3 + err3


def test_unreachable_postgresql_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{_free_port()}/receiver"
    for action in ("check", "upgrade"):
        status, out, err = run(capsys, "db", action, "--database-url", url)
        line = one_line_error(err)
        assert status == 2 and "127.0.0.1" in line and "hunter2" not in out + err


def test_the_cli_as_a_subprocess(tmp_path: Path) -> None:
    env: dict[str, Any] = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    argv = [sys.executable, "-m", "receiver.cli", "db"]
    missing = subprocess.run(
        [*argv, "check", "--data-dir", str(tmp_path / "d")], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    done = subprocess.run(
        [*argv, "upgrade", "--data-dir", str(tmp_path / "d")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and f"schema version 0 to {NEWEST}" in done.stdout
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{_free_port()}/receiver"
    down = subprocess.run(
        [*argv, "check", "--database-url", url], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert down.returncode == 2 and down.stderr.count("\n") == 1, down.stderr
    assert "hunter2" not in down.stdout + down.stderr and "Traceback" not in down.stderr
