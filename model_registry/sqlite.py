"""SQLite backend: one file, WAL journal, every change one ``BEGIN IMMEDIATE`` transaction.

``BEGIN IMMEDIATE`` takes the write lock before the current state is read, so two processes changing the
same registry are serialised: the second one reads the first one's result (and a rollback with
``expected_active`` then fails with ConflictError instead of rolling back twice). A process killed
mid-change leaves the last committed state: SQLite's journal undoes the partial transaction on the next
open. A connection is opened per operation, so a ``SQLiteBackend`` is safe to share between threads
and survives ``fork``.

Schema: ``PRAGMA user_version`` holds :data:`SCHEMA_VERSION`. Opening an older file upgrades it in place
(one ``BEGIN IMMEDIATE`` transaction, every row kept; see ``_MIGRATIONS``); a newer file is refused.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from incident_common.errors import RegistryError, RegistryUnavailableError
from incident_common.sqlscript import split_sql
from model_registry.backend import Change
from model_registry.baseline import Baseline
from model_registry.state import AuditEntry, ModelState, VersionInfo, from_timestamp

__all__ = ["SCHEMA_VERSION", "SQLiteBackend"]

SCHEMA_VERSION = 2

#: Version 1: the tables as first released (kept verbatim: a new file runs every migration in order, so a
#: fresh registry and an upgraded one end with the same schema).
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS models (
    name            TEXT PRIMARY KEY,
    active_version  TEXT,
    traffic         TEXT NOT NULL DEFAULT '{}',
    mode            TEXT NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'fallback')),
    guardrail_level INTEGER NOT NULL DEFAULT 0 CHECK (guardrail_level BETWEEN 0 AND 3),
    generation      INTEGER NOT NULL DEFAULT 0,
    active_since    REAL,
    created_at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    model          TEXT NOT NULL REFERENCES models(name),
    version        TEXT NOT NULL,
    artifact_path  TEXT NOT NULL,
    registered_at  REAL NOT NULL,
    metadata       TEXT NOT NULL DEFAULT '{}',
    baseline       TEXT,
    unhealthy      INTEGER NOT NULL DEFAULT 0,
    served_healthy INTEGER NOT NULL DEFAULT 0,
    UNIQUE (model, version)
);
CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     REAL NOT NULL,
    model  TEXT NOT NULL,
    action TEXT NOT NULL,
    actor  TEXT NOT NULL,
    reason TEXT NOT NULL,
    before TEXT NOT NULL,
    after  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_model ON audit (model, id);
"""

#: Version 2: the risky-tool switch; existing models get 0 (tools allowed), every other row is kept.
_SCHEMA_V2 = """
ALTER TABLE models ADD COLUMN tools_blocked INTEGER NOT NULL DEFAULT 0 CHECK (tools_blocked IN (0, 1))
"""

#: Schema version -> the script that upgrades the version before it to it.
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}


class SQLiteBackend:
    """The registry in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, *, create: bool = True, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        if not self.path.exists():
            if not create:
                raise RegistryError(f"no model registry at {self.path} (create it with 'register')")
            if not self.path.parent.is_dir():
                raise RegistryError(
                    f"cannot create the registry {self.path}: directory {self.path.parent} does not exist"
                )
        self._init_schema()

    # -- connections -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise RegistryUnavailableError(f"cannot open the registry {self.path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            conn.close()
            raise RegistryUnavailableError(f"cannot initialise the registry {self.path}: {exc}") from exc
        return conn

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN <mode>`` ... ``COMMIT``; an exception rolls back; SQLite errors become RegistryError."""
        conn = self._connect()
        try:
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise RegistryUnavailableError(f"registry {self.path} is unavailable: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise RegistryUnavailableError(f"registry {self.path} cannot be read: {exc}") from exc
        finally:
            conn.close()

    def _init_schema(self) -> None:
        """Create or upgrade the schema in place. The version is read again under ``BEGIN IMMEDIATE`` so
        processes opening an old (or new) file together apply each migration exactly once."""
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            version = self._schema_version(conn)
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    version = self._schema_version(conn)
                    for target in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in split_sql(_MIGRATIONS[target]):
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise RegistryUnavailableError(f"cannot initialise the registry {self.path}: {exc}") from exc
        finally:
            conn.close()

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RegistryError(
                f"registry {self.path} has schema version {version}; this code knows {SCHEMA_VERSION}"
            )
        return version

    # -- reading -----------------------------------------------------------------------------------

    @staticmethod
    def _version_from_row(row: sqlite3.Row) -> VersionInfo:
        baseline = None if row["baseline"] is None else Baseline.from_dict(json.loads(row["baseline"]))
        return VersionInfo(
            model=row["model"],
            version=row["version"],
            artifact_path=row["artifact_path"],
            registered_at=from_timestamp(row["registered_at"]),
            metadata=json.loads(row["metadata"]),
            baseline=baseline,
            unhealthy=bool(row["unhealthy"]),
            served_healthy=bool(row["served_healthy"]),
            seq=int(row["seq"]),
        )

    def _load(self, conn: sqlite3.Connection, model: str) -> ModelState | None:
        row = conn.execute("SELECT * FROM models WHERE name = ?", (model,)).fetchone()
        if row is None:
            return None
        versions = [
            self._version_from_row(r)
            for r in conn.execute("SELECT * FROM versions WHERE model = ? ORDER BY seq", (model,))
        ]
        return ModelState(
            model=model,
            active_version=row["active_version"],
            traffic={str(k): float(v) for k, v in json.loads(row["traffic"]).items()},
            mode=row["mode"],
            guardrail_level=int(row["guardrail_level"]),
            generation=int(row["generation"]),
            active_since=None if row["active_since"] is None else from_timestamp(row["active_since"]),
            versions=versions,
            tools_blocked=bool(row["tools_blocked"]),
        )

    def models(self) -> list[str]:
        with self._transaction("DEFERRED") as conn:
            return [r[0] for r in conn.execute("SELECT name FROM models ORDER BY name")]

    def load(self, model: str) -> ModelState | None:
        with self._transaction("DEFERRED") as conn:
            return self._load(conn, model)

    def generation(self, model: str) -> int | None:
        with self._transaction("DEFERRED") as conn:
            row = conn.execute("SELECT generation FROM models WHERE name = ?", (model,)).fetchone()
        return None if row is None else int(row[0])

    def history(self, model: str | None, limit: int) -> list[AuditEntry]:
        with self._transaction("DEFERRED") as conn:
            if model is None:
                rows = conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM audit WHERE model = ? ORDER BY id DESC LIMIT ?", (model, limit)
                ).fetchall()
        return [
            AuditEntry(
                id=int(r["id"]),
                at=from_timestamp(r["at"]),
                model=r["model"],
                action=r["action"],
                actor=r["actor"],
                reason=r["reason"],
                before=json.loads(r["before"]),
                after=json.loads(r["after"]),
            )
            for r in rows
        ]

    # -- writing -----------------------------------------------------------------------------------

    def apply(
        self, model: str, action: str, actor: str, reason: str, change: Change
    ) -> tuple[ModelState, AuditEntry]:
        now = time.time()
        with self._transaction("IMMEDIATE") as conn:
            current = self._load(conn, model)
            proposed = change(current)
            stored = self._write(conn, current, proposed, now)
            before: dict[str, Any] = {} if current is None else current.summary()
            after = stored.summary()
            cur = conn.execute(
                "INSERT INTO audit (at, model, action, actor, reason, before, after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, model, action, actor, reason, json.dumps(before), json.dumps(after)),
            )
            entry_id = int(cur.lastrowid or 0)
        entry = AuditEntry(entry_id, from_timestamp(now), model, action, actor, reason, before, after)
        return stored, entry

    def _write(
        self, conn: sqlite3.Connection, current: ModelState | None, new: ModelState, now: float
    ) -> ModelState:
        generation = (0 if current is None else current.generation) + 1
        active_since = None if new.active_since is None else new.active_since.timestamp()
        traffic = json.dumps(new.traffic, sort_keys=True)
        if current is None:
            conn.execute(
                "INSERT INTO models (name, active_version, traffic, mode, guardrail_level, tools_blocked, "
                "generation, active_since, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.model,
                    new.active_version,
                    traffic,
                    new.mode,
                    new.guardrail_level,
                    int(new.tools_blocked),
                    generation,
                    active_since,
                    now,
                ),
            )
        else:
            conn.execute(
                "UPDATE models SET active_version = ?, traffic = ?, mode = ?, guardrail_level = ?, "
                "tools_blocked = ?, generation = ?, active_since = ? WHERE name = ?",
                (
                    new.active_version,
                    traffic,
                    new.mode,
                    new.guardrail_level,
                    int(new.tools_blocked),
                    generation,
                    active_since,
                    new.model,
                ),
            )
        old_versions = {} if current is None else {v.version: v for v in current.versions}
        stored_versions: list[VersionInfo] = []
        for v in new.versions:
            old = old_versions.get(v.version)
            if old is None:
                cur = conn.execute(
                    "INSERT INTO versions (model, version, artifact_path, registered_at, metadata, baseline, "
                    "unhealthy, served_healthy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new.model,
                        v.version,
                        v.artifact_path,
                        v.registered_at.timestamp(),
                        json.dumps(v.metadata),
                        None if v.baseline is None else json.dumps(v.baseline.to_dict()),
                        int(v.unhealthy),
                        int(v.served_healthy),
                    ),
                )
                v = replace(v, seq=int(cur.lastrowid or 0))
            elif (old.unhealthy, old.served_healthy) != (v.unhealthy, v.served_healthy):
                conn.execute(
                    "UPDATE versions SET unhealthy = ?, served_healthy = ? WHERE model = ? AND version = ?",
                    (int(v.unhealthy), int(v.served_healthy), new.model, v.version),
                )
            stored_versions.append(v)
        return replace(new, generation=generation, versions=stored_versions)

    # -- checking ----------------------------------------------------------------------------------

    def integrity_problems(self) -> list[str]:
        problems: list[str] = []
        with self._transaction("DEFERRED") as conn:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems.extend(f"sqlite integrity_check: {r}" for r in result)
            for row in conn.execute(
                "SELECT m.name, m.generation, (SELECT COUNT(*) FROM audit a WHERE a.model = m.name) AS n "
                "FROM models m"
            ):
                if row["generation"] != row["n"]:
                    problems.append(
                        f"model {row['name']!r}: generation {row['generation']} but {row['n']} audit entries"
                    )
        return problems
