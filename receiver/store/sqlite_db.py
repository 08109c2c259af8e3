"""SQLite as a :class:`~receiver.store.sql.Database`: WAL, ``synchronous=FULL``, foreign keys, busy timeout.

Each thread gets its own connection (SQLite connections are not shared across threads). Every write runs
inside ``BEGIN IMMEDIATE``, which serializes writers across threads *and* processes sharing the file, so the
dialect hooks (row locks, advisory locks, ``SKIP LOCKED``) are no-ops here.

Latency of the webhook (the raw body must be fsynced before the 200) is protected two ways:

* threads of this process queue on a :class:`_WriteGate` before SQLite's lock, so no request thread ever
  sleeps in SQLite's busy handler (which backs off in 1..100 ms steps) behind another thread of ours, and
  an *urgent* writer (the webhook) goes ahead of queued background writers (worker, responder, outbox);
* automatic WAL checkpoints (which fsync the database file inside whichever ``COMMIT`` crosses the
  threshold) are off; a background writer runs a ``PASSIVE`` checkpoint after releasing the gate, which
  does not block writers.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from receiver.errors import StoreError, StoreUnavailable
from receiver.store.migrate import MIGRATIONS_ROOT, discover_migrations, refuse_newer
from receiver.store.sql import Cursor, utc_stamp
from receiver.store.sqlscript import split_sql

__all__ = ["SQLiteDatabase"]

#: commits between WAL checkpoints, run by a background writer after it has released the write gate
_CHECKPOINT_EVERY = 500
#: ... or by an urgent writer when no background writer has done it for this many commits
_URGENT_CHECKPOINT_EVERY = 20 * _CHECKPOINT_EVERY


def unavailable(exc: BaseException, doing: str) -> StoreUnavailable:
    return StoreUnavailable(f"store cannot {doing}: {exc}")


class _SQLiteTx:
    """A connection seen as a :class:`~receiver.store.sql.Tx`; ``BEGIN IMMEDIATE`` makes every hook moot."""

    locking = ""
    skip_locked = ""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, params)

    def lock(self, key: str) -> None:
        return None


class _WriteGate:
    """A mutex for this process's SQLite writers where urgent acquirers overtake queued background ones.

    A background acquirer waits while an urgent one is waiting, but at most ``max_defer`` seconds in a row,
    so background work (which must still make progress) is slowed under a flood, never starved.
    """

    def __init__(self, max_defer: float = 0.05) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        self._urgent_waiting = 0
        self.max_defer = max_defer

    def acquire(self, *, urgent: bool, timeout: float) -> bool:
        start = time.monotonic()
        deadline = start + timeout
        defer_until = start + self.max_defer
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
            try:
                while True:
                    now = time.monotonic()
                    if not self._held and (urgent or not self._urgent_waiting or now >= defer_until):
                        self._held = True
                        return True
                    if now >= deadline:
                        return False
                    wait = deadline - now
                    if not urgent and not self._held:  # free but deferred: re-check when deferral ends
                        wait = min(wait, max(defer_until - now, 0.0005))
                    self._cond.wait(wait)
            finally:
                if urgent:
                    self._urgent_waiting -= 1

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


class SQLiteDatabase:
    dialect = "sqlite"

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = 5000, migrations_dir: Path | None = None
    ) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        self.busy_timeout_ms = busy_timeout_ms
        self.migrations_dir = migrations_dir or MIGRATIONS_ROOT / "sqlite"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._gate = _WriteGate()
        self._checkpoint_lock = threading.Lock()
        self._commits_since_checkpoint = 0
        self._closed = False

    # -- connections -------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_ms / 1000
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _maybe_checkpoint
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; tests read through it)."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise unavailable(exc, "open the database") from exc
            self._local.conn = conn
            self._local.durable = True  # _connect sets synchronous = FULL
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def read(self) -> Iterator[_SQLiteTx]:
        try:
            yield _SQLiteTx(self.connection())
        except sqlite3.Error as exc:
            raise unavailable(exc, "read") from exc

    @contextmanager
    def transaction(self, *, durable: bool = True, urgent: bool = False) -> Iterator[_SQLiteTx]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on this thread's connection; rolls back on any exception.

        ``durable=False`` commits without an fsync (``synchronous=NORMAL``; WAL stays consistent, the last
        commits may be lost on power loss). SQLite errors become :class:`StoreUnavailable`.
        """
        with self._gated(durable=durable, urgent=urgent) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise unavailable(exc, "begin a transaction") from exc
            try:
                yield _SQLiteTx(conn)
            except sqlite3.OperationalError as exc:  # locked, disk full, I/O: try again later
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise unavailable(exc, "write") from exc
            except sqlite3.Error as exc:  # a constraint or a bug: retrying the same write will not help
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"store cannot write: {exc}") from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise unavailable(exc, "commit") from exc

    @contextmanager
    def _gated(self, *, durable: bool, urgent: bool) -> Iterator[sqlite3.Connection]:
        """Hold the write gate with this thread's connection in the wanted ``synchronous`` mode; a block
        that leaves normally counts as one commit towards the next checkpoint."""
        conn = self.connection()
        if not self._gate.acquire(urgent=urgent, timeout=self.busy_timeout_ms / 1000):
            raise StoreUnavailable(f"store busy: writers queued > {self.busy_timeout_ms}ms")
        try:
            if getattr(self._local, "durable", True) != durable:  # connections start FULL
                try:
                    conn.execute("PRAGMA synchronous = FULL" if durable else "PRAGMA synchronous = NORMAL")
                except sqlite3.Error as exc:
                    raise unavailable(exc, "begin a transaction") from exc
                self._local.durable = durable
            yield conn
            self._commits_since_checkpoint += 1
        finally:
            self._gate.release()
        self._maybe_checkpoint(conn, urgent)

    def _maybe_checkpoint(self, conn: sqlite3.Connection, urgent: bool) -> None:
        """Copy the WAL back into the database now and then, outside the write gate (PASSIVE: writers
        carry on meanwhile). Request threads leave it to background writers unless the WAL grows large."""
        due = _URGENT_CHECKPOINT_EVERY if urgent else _CHECKPOINT_EVERY
        if self._commits_since_checkpoint < due or not self._checkpoint_lock.acquire(blocking=False):
            return
        try:
            self._commits_since_checkpoint = 0
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # a checkpoint is an optimisation; the next one retries
        finally:
            self._checkpoint_lock.release()

    def insert_many(self, sql_head: str, rows: Sequence[Sequence[Any]], *, urgent: bool) -> list[int]:
        """One multi-row ``INSERT`` in autocommit mode: atomic, one fsync, and a single SQLite call (so one
        GIL release and re-acquire) for the whole group. Rows of one statement get consecutive ids
        (``AUTOINCREMENT``, write lock held), so the ``n``-th row's id is ``lastrowid - len + 1 + n``."""
        width = len(rows[0])
        marks = "(" + ", ".join("?" * width) + ")"
        params: list[Any] = [value for row in rows for value in row]
        with self._gated(durable=True, urgent=urgent) as conn:
            try:
                last = int(
                    conn.execute(sql_head + " " + ",".join([marks] * len(rows)), params).lastrowid or 0
                )
            except sqlite3.Error as exc:
                raise unavailable(exc, "record the notification") from exc
        first = last - len(rows) + 1
        return [first + n for n in range(len(rows))]

    # -- schema ------------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        conn = self.connection()
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not exists:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def newest_migration(self) -> int:
        found = discover_migrations(self.migrations_dir)
        return found[-1].version if found else 0

    def migrate(self) -> list[int]:
        """Apply every migration newer than the database, each in its own ``BEGIN IMMEDIATE``, re-checking
        its version under the lock (another process starting on the same fresh file may have applied it)."""
        migrations = discover_migrations(self.migrations_dir)
        conn = self.connection()
        # Switching a fresh file to WAL takes an exclusive lock and may answer "database is locked" at
        # once, without SQLite's busy handler, when another process starting on the same file does it too:
        # retry for as long as the busy timeout allows.
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)""")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise unavailable(exc, "initialise the schema") from exc
                time.sleep(0.02)
            except sqlite3.Error as exc:
                raise unavailable(exc, "initialise the schema") from exc
        current = self.schema_version()
        refuse_newer(current, migrations, str(self.path))
        applied: list[int] = []
        for migration in migrations:
            if migration.version <= current:
                continue
            statements = split_sql(migration.path.read_text())
            try:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute(
                    "SELECT 1 FROM schema_version WHERE version = ?", (migration.version,)
                ).fetchone():
                    conn.execute("ROLLBACK")
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, utc_stamp(time.time())),
                )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"migration {migration.path.name} failed: {exc}") from exc
            applied.append(migration.version)
        return applied

    def listen(self, channel: str, on_notify: Callable[[], None]) -> Callable[[], None]:
        """SQLite has no signal between processes: nothing to listen to (workers on one file poll)."""
        return _nothing

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()


def _nothing() -> None:
    return None
