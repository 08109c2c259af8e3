"""Forward migrations from numbered SQL files; a database newer than the code is refused."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from receiver.errors import StoreError
from receiver.store import SQLiteStore, open_store
from receiver.store.migrate import MIGRATIONS_ROOT, discover_migrations
from receiver.store.sqlscript import split_sql

MIGRATIONS_DIR = MIGRATIONS_ROOT / "sqlite"


def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    try:
        newest = discover_migrations(MIGRATIONS_DIR)[-1].version
        assert store.schema_version() == newest
        conn = store.connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert store.migrate() == []  # idempotent
    finally:
        store.close()


def test_old_database_is_migrated_forward_keeping_data(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_core.sql", migrations)
    old = SQLiteStore(tmp_path / "r.db", migrations_dir=migrations)
    assert old.migrate() == [1]
    kept = old.record_notification(b"{}")
    old.close()
    # a later release adds two files: adding a file is all it takes
    (migrations / "0002_ledger.sql").write_text("CREATE TABLE ledger (id INTEGER PRIMARY KEY, note TEXT);")
    (migrations / "0003_outbox.sql").write_text(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY, ledger_id INTEGER REFERENCES ledger (id));"
    )
    new = SQLiteStore(tmp_path / "r.db", migrations_dir=migrations)
    try:
        assert new.migrate() == [2, 3]
        assert new.schema_version() == 3
        conn = new.connection()
        names = [r[0] for r in conn.execute("SELECT name FROM schema_version ORDER BY version")]
        assert names == ["core", "ledger", "outbox"]
        assert conn.execute("SELECT body FROM notifications WHERE id = ?", (kept,)).fetchone()[0] == b"{}"
    finally:
        new.close()


def test_failing_migration_rolls_back_alone(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_core.sql", migrations)
    (migrations / "0002_bad.sql").write_text("CREATE TABLE half (id INTEGER); SELECT * FROM no_such_table;")
    store = SQLiteStore(tmp_path / "r.db", migrations_dir=migrations)
    try:
        with pytest.raises(StoreError, match=r"migration 0002_bad\.sql failed: no such table: no_such_table"):
            store.migrate()
        assert store.schema_version() == 1
        tables = {r[0] for r in store.connection().execute("SELECT name FROM sqlite_master")}
        assert "half" not in tables and "notifications" in tables
    finally:
        store.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "receiver.db")
    conn.execute("INSERT INTO schema_version VALUES (99, 'future', '2099-01-01T00:00:00Z')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99, newer than this receiver knows"):
        open_store(tmp_path)


def test_badly_named_migration_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "2_oops.sql").write_text("")
    with pytest.raises(StoreError, match=r"does not match NNNN_name\.sql"):
        discover_migrations(tmp_path)


def test_split_sql_keeps_triggers_strings_and_comments_whole() -> None:
    script = """-- a comment; with a semicolon
CREATE TABLE a (id INTEGER, note TEXT DEFAULT 'x;y');
CREATE TRIGGER t AFTER INSERT ON a BEGIN
  UPDATE a SET note = 'z;' WHERE id = new.id;
END;
INSERT INTO a (id) VALUES (1)"""
    statements = split_sql(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    assert statements[2] == "INSERT INTO a (id) VALUES (1)"


def test_receivers_starting_together_on_a_fresh_database_migrate_once(tmp_path: Path) -> None:
    """Several processes on one new data dir (separate connections here): each version applied once,
    nobody fails on a table another one created meanwhile."""
    path = tmp_path / "r.db"
    stores = [SQLiteStore(path) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def start(store: SQLiteStore) -> None:
        barrier.wait()
        try:
            applied.append(store.migrate())
        except BaseException as exc:  # recorded and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert errors == []
        versions = [m.version for m in discover_migrations(MIGRATIONS_DIR)]
        assert sorted(v for run in applied for v in run) == versions
        rows = stores[0].connection().execute("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == versions
    finally:
        for store in stores:
            store.close()
