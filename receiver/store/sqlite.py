"""The SQLite store: WAL, ``synchronous=FULL``, foreign keys, busy timeout, numbered forward migrations.

Migrations are the files ``receiver/store/migrations/NNNN_name.sql``, applied in number order, each in its own
transaction together with its ``schema_version`` row; adding a file is all a new table takes. A database
whose version is newer than the newest file here is refused rather than misread.

Each thread gets its own connection (SQLite connections are not shared across threads). All writes that
must be atomic run inside :meth:`SQLiteStore.transaction` (``BEGIN IMMEDIATE``), which serializes writers
across threads *and* processes sharing the file.

Latency of the webhook (the raw body must be fsynced before the 200) is protected two ways:

* threads of this process queue on a :class:`_WriteGate` before SQLite's lock, so no request thread ever
  sleeps in SQLite's busy handler (which backs off in 1..100 ms steps) behind another thread of ours, and
  an *urgent* writer (the webhook) goes ahead of queued background writers (worker, responder, outbox);
* :meth:`SQLiteStore.record_notification` group-commits: concurrent requests share one transaction and
  one fsync, and each returns only after the commit that holds its row;
* automatic WAL checkpoints (which fsync the database file inside whichever ``COMMIT`` crosses the
  threshold) are off; a background writer runs a ``PASSIVE`` checkpoint after releasing the gate, which
  does not block writers.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receiver.errors import NotFound, StoreError, StoreUnavailable
from receiver.store.base import (
    AlertRecord,
    IncidentDetail,
    IncidentRecord,
    IncidentWriter,
    NotificationRecord,
    RejectedRecord,
    TimelineEntry,
)
from receiver.store.sqlscript import split_sql

__all__ = ["MIGRATIONS_DIR", "Migration", "SQLiteStore", "discover_migrations", "utc_now"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LIVE_STATES = ("open", "contained")
#: commits between WAL checkpoints, run by a background writer after it has released the write gate
_CHECKPOINT_EVERY = 500
#: ... or by an urgent writer when no background writer has done it for this many commits
_URGENT_CHECKPOINT_EVERY = 20 * _CHECKPOINT_EVERY
#: the WHERE clause of the partial index ``notifications_pending``: a query must repeat it verbatim for SQLite
#: to use that index (``state = 'received'`` alone does not imply it, and the query then scans every row
#: ever received, which made each worker step O(table size))
_PENDING = "state IN ('received', 'applied')"
#: most notifications one group commit carries (4 bound parameters each)
_MAX_GROUP = 200


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Migration:
    def __init__(self, version: int, name: str, path: Path) -> None:
        self.version, self.name, self.path = version, name, path

    def __repr__(self) -> str:
        return f"Migration({self.version:04d}_{self.name})"


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``directory`` in version order; duplicate numbers are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise StoreError(f"migration file {path.name!r} does not match NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise StoreError(
                f"two migrations share version {version:04d}: {found[version].path.name}, {path.name}"
            )
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def _unavailable(exc: sqlite3.Error, doing: str) -> StoreUnavailable:
    return StoreUnavailable(f"store cannot {doing}: {exc}")


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def _incident(row: sqlite3.Row) -> IncidentRecord:
    return IncidentRecord(
        id=row["id"],
        runbook_id=row["runbook_id"],
        incident_key=row["incident_key"],
        title=row["title"],
        model=row["model"],
        group_labels=_loads(row["group_labels"], {}),
        state=row["state"],
        severity=row["severity"],
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
    )


def _notification(row: sqlite3.Row) -> NotificationRecord:
    return NotificationRecord(
        id=row["id"],
        received_at=row["received_at"],
        received_ts=row["received_ts"],
        body=bytes(row["body"]),
        state=row["state"],
        attempts=row["attempts"],
        events=_loads(row["events"], None),
        last_error=row["last_error"],
    )


class _Writer(IncidentWriter):
    """:class:`IncidentWriter` over one open ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, conn: sqlite3.Connection, notification_id: int, now: str) -> None:
        self.conn, self.notification_id, self.now = conn, notification_id, now

    def alert_state_seen(self, fingerprint: str, status: str, starts_at: str | None) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM alert_history WHERE fingerprint = ? AND status = ? AND starts_at = ?",
            (fingerprint, status, starts_at or ""),
        ).fetchone()
        return row is not None

    def record_alert(
        self,
        *,
        fingerprint: str,
        alertname: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        status: str,
        starts_at: str | None,
        ends_at: str | None,
        generator_url: str,
    ) -> None:
        self.conn.execute(
            """INSERT INTO alerts (fingerprint, alertname, labels, annotations, status, starts_at, ends_at,
                                   generator_url, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (fingerprint) DO UPDATE SET alertname = excluded.alertname,
                   labels = excluded.labels, annotations = excluded.annotations, status = excluded.status,
                   starts_at = excluded.starts_at,
                   ends_at = excluded.ends_at, generator_url = excluded.generator_url,
                   updated_at = excluded.updated_at""",
            (
                fingerprint,
                alertname,
                json.dumps(dict(labels), sort_keys=True),
                json.dumps(dict(annotations), sort_keys=True),
                status,
                starts_at,
                ends_at,
                generator_url,
                self.now,
            ),
        )
        self.conn.execute(
            """INSERT OR IGNORE INTO alert_history (fingerprint, status, starts_at, ends_at, notification_id,
                                                    recorded_at) VALUES (?, ?, ?, ?, ?, ?)""",
            (fingerprint, status, starts_at or "", ends_at, self.notification_id, self.now),
        )

    def find_live_incident(self, runbook_id: str, incident_key: str) -> IncidentRecord | None:
        row = self.conn.execute(
            "SELECT * FROM incidents WHERE runbook_id = ? AND incident_key = ?"
            " AND state IN ('open', 'contained')",
            (runbook_id, incident_key),
        ).fetchone()
        return _incident(row) if row else None

    def live_incident_for_alert(self, fingerprint: str) -> IncidentRecord | None:
        row = self.conn.execute(
            """SELECT i.* FROM incidents i JOIN incident_alerts a ON a.incident_id = i.id
               WHERE a.fingerprint = ? AND i.state IN ('open', 'contained') ORDER BY i.id DESC LIMIT 1""",
            (fingerprint,),
        ).fetchone()
        return _incident(row) if row else None

    def create_incident(
        self,
        *,
        runbook_id: str,
        incident_key: str,
        title: str,
        model: str | None,
        group_labels: Mapping[str, str],
        severity: str,
    ) -> IncidentRecord:
        cursor = self.conn.execute(
            """INSERT INTO incidents (runbook_id, incident_key, title, model, group_labels, state, severity,
                                      opened_at, updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)""",
            (
                runbook_id,
                incident_key,
                title,
                model,
                json.dumps(dict(group_labels), sort_keys=True),
                severity,
                self.now,
                self.now,
            ),
        )
        row = self.conn.execute("SELECT * FROM incidents WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return _incident(row)

    def upsert_incident_alert(
        self, incident_id: int, fingerprint: str, status: str, starts_at: str | None, ends_at: str | None
    ) -> None:
        self.conn.execute(
            """INSERT INTO incident_alerts (incident_id, fingerprint, status, starts_at, ends_at, joined_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status,
                   starts_at = excluded.starts_at, ends_at = excluded.ends_at""",
            (incident_id, fingerprint, status, starts_at, ends_at, self.now),
        )

    def incident_alert_counts(self, incident_id: int) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT COALESCE(SUM(status = 'firing'), 0), COUNT(*) FROM incident_alerts WHERE incident_id = ?",
            (incident_id,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def set_severity(self, incident_id: int, severity: str) -> None:
        self.conn.execute(
            "UPDATE incidents SET severity = ?, updated_at = ? WHERE id = ?",
            (severity, self.now, incident_id),
        )

    def set_state(self, incident_id: int, state: str) -> None:
        stamp = {"resolved": ", resolved_at = :now", "closed": ", closed_at = :now"}.get(state, "")
        self.conn.execute(
            f"UPDATE incidents SET state = :state, updated_at = :now{stamp} WHERE id = :id",
            {"state": state, "now": self.now, "id": incident_id},
        )

    def add_timeline(
        self,
        incident_id: int,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        cursor = self.conn.execute(
            """INSERT OR IGNORE INTO timeline
                   (incident_id, at, kind, message, data, dedupe_key, notification_id)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (
                incident_id,
                self.now,
                kind,
                message,
                json.dumps(dict(data or {}), sort_keys=True),
                dedupe_key,
                self.notification_id,
            ),
        )
        return cursor.rowcount == 1


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


class _Pending:
    """One notification waiting for the group commit that will carry it.

    ``wake`` is a plain lock held from birth: the waiter blocks acquiring it and the leader releases it
    (one C call each way, against an Event's Condition and its Python-level bookkeeping).
    """

    __slots__ = ("body", "done", "error", "group_key", "id", "wake")

    def __init__(self, body: bytes, group_key: str | None) -> None:
        self.body, self.group_key = body, group_key
        self.id = 0
        self.done = False  # its commit finished (see error); not done when woken means "lead"
        self.error: StoreUnavailable | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


class SQLiteStore:
    """The :class:`~receiver.store.base.Store` on one SQLite file; open it with ``open_store``.

    :meth:`transaction` is public API for modules with their own tables (ledger, outbox, timers).
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 5000,
        rejected_body_cap: int = 64 * 1024,
        migrations_dir: Path = MIGRATIONS_DIR,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.rejected_body_cap = rejected_body_cap
        self.migrations_dir = migrations_dir
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._gate = _WriteGate()
        self._ingest_lock = threading.Lock()  # guards _ingest_queue
        self._ingest_queue: list[_Pending] = []
        self._committing = False  # a leader is committing queued notifications (under _ingest_lock)
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
        """This thread's connection (autocommit mode: use :meth:`transaction` for atomic writes)."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise _unavailable(exc, "open the database") from exc
            self._local.conn = conn
            self._local.durable = True  # _connect sets synchronous = FULL
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, durable: bool = True, urgent: bool = False) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on this thread's connection; rolls back on any exception.

        For modules that keep their own tables (ledger, outbox, timers): the write lock is held for the
        whole block, so read-check-write sequences inside it are serialized across threads and processes.
        Threads of this process queue on a Python lock first (SQLite's busy handler would sleep in
        millisecond steps instead of waking the next writer at once); ``urgent=True`` (the webhook's own
        writes) goes ahead of queued non-urgent writers. ``durable=False`` commits without
        an fsync (``synchronous=NORMAL``; WAL stays consistent, the last commits may be lost on power
        loss): only for work that is redone idempotently from a durable record. SQLite errors become
        :class:`StoreUnavailable`.
        """
        with self._gated(durable=durable, urgent=urgent) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _unavailable(exc, "begin a transaction") from exc
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _unavailable(exc, "commit") from exc

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
                    raise _unavailable(exc, "begin a transaction") from exc
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

    def _write(self, doing: str, sql: str, params: Any = (), *, urgent: bool = False) -> sqlite3.Cursor:
        try:
            with self.transaction(urgent=urgent) as conn:
                return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise _unavailable(exc, doing) from exc

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

    def migrate(self) -> list[int]:
        """Apply every migration newer than the database, each in its own transaction; return versions."""
        migrations = discover_migrations(self.migrations_dir)
        newest = migrations[-1].version if migrations else 0
        conn = self.connection()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)""")
        except sqlite3.Error as exc:
            raise _unavailable(exc, "initialise the schema") from exc
        current = self.schema_version()
        if current > newest:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this receiver knows "
                f"({newest}); upgrade the receiver or point --data-dir elsewhere"
            )
        applied: list[int] = []
        for migration in migrations:
            if migration.version <= current:
                continue
            statements = split_sql(migration.path.read_text())
            try:
                # Re-checked under the write lock: another process starting on the same fresh database
                # may have applied this version since we read ``current``.
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("SELECT 1 FROM schema_version WHERE version = ?",
                                (migration.version,)).fetchone():
                    conn.execute("ROLLBACK")
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                             (migration.version, migration.name, utc_now()))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"migration {migration.path.name} failed: {exc}") from exc
            applied.append(migration.version)
        return applied

    # -- notifications -----------------------------------------------------------------------------------

    def record_notification(self, body: bytes, group_key: str | None = None) -> int:
        """Commit the raw body (fsynced) and return its id, sharing the commit with concurrent callers.

        Group commit with a hand-off: a caller that finds no commit in progress leads, committing every
        queued row in one statement; callers arriving meanwhile wait on their own wake lock, which the
        leader releases once their row is committed (or failed), or to make the first of them the next
        leader. No caller returns before the commit holding its row has finished.
        """
        mine = _Pending(body, group_key)
        with self._ingest_lock:
            self._ingest_queue.append(mine)
            lead = not self._committing
            self._committing = True
        if not lead:
            mine.wake.acquire()
        if not mine.done:
            self._lead()
        if mine.error is not None:
            raise mine.error
        return mine.id

    def _lead(self) -> None:
        with self._ingest_lock:
            batch = self._ingest_queue[:_MAX_GROUP]
            del self._ingest_queue[:_MAX_GROUP]
        try:
            self._commit_batch(batch)
        finally:
            with self._ingest_lock:
                successor = self._ingest_queue[0] if self._ingest_queue else None
                if successor is None:
                    self._committing = False
            for item in batch:  # every wake lock here is held: from birth, or re-taken by this leader
                item.wake.release()
            if successor is not None:
                successor.wake.release()  # not done: it leads the next group

    def _commit_batch(self, batch: list[_Pending]) -> None:
        """One multi-row ``INSERT`` in autocommit mode: atomic, one fsync, and a single SQLite call (so
        one GIL release and re-acquire) for the whole group. Rows of one statement get consecutive ids
        (``AUTOINCREMENT``, write lock held), so the ``n``-th row's id is ``lastrowid - len + 1 + n``.
        The group shares one receipt time: when its commit began (each row's wait is at most one commit)."""
        received_at, received_ts = utc_now(), time.time()
        params: list[object] = []
        for item in batch:
            params += (received_at, received_ts, item.body, item.group_key)
        sql = "INSERT INTO notifications (received_at, received_ts, body, group_key) VALUES " + ",".join(
            ["(?, ?, ?, ?)"] * len(batch)
        )
        try:
            with self._gated(durable=True, urgent=True) as conn:
                try:
                    last = int(conn.execute(sql, params).lastrowid or 0)
                except sqlite3.Error as exc:
                    raise _unavailable(exc, "record the notification") from exc
            first = last - len(batch) + 1
            for n, item in enumerate(batch):
                item.id = first + n
        except StoreUnavailable as exc:
            for item in batch:
                item.error = exc
        except BaseException as exc:  # never leave a waiter believing its row was committed
            for item in batch:
                item.error = StoreUnavailable(f"store cannot record the notification: {exc!r}")
            raise
        finally:
            for item in batch:
                item.done = True

    def record_rejected(
        self,
        *,
        status: int,
        reason: str,
        problems: list[str],
        content_type: str | None,
        body: bytes,
        body_size: int | None = None,
    ) -> int:
        kept = body[: self.rejected_body_cap]
        size = max(len(body), body_size or 0)
        cursor = self._write(
            "record the rejected body",
            """INSERT INTO rejected
                   (received_at, status, reason, problems, content_type, body_size, body, truncated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                utc_now(),
                status,
                reason,
                json.dumps(problems),
                content_type,
                size,
                kept,
                int(len(kept) < size),
            ),
            urgent=True,
        )
        return int(cursor.lastrowid or 0)

    def list_rejected(self, *, limit: int = 50, before_id: int | None = None) -> list[RejectedRecord]:
        rows = (
            self.connection()
            .execute(
                "SELECT * FROM rejected WHERE id < ? ORDER BY id DESC LIMIT ?",
                (before_id if before_id is not None else 2**62, limit),
            )
            .fetchall()
        )
        return [
            RejectedRecord(
                id=r["id"],
                received_at=r["received_at"],
                status=r["status"],
                reason=r["reason"],
                problems=_loads(r["problems"], []),
                content_type=r["content_type"],
                body_size=r["body_size"],
                body=bytes(r["body"]),
                truncated=bool(r["truncated"]),
            )
            for r in rows
        ]

    def next_received(self) -> NotificationRecord | None:
        row = (
            self.connection()
            .execute(
                f"SELECT * FROM notifications WHERE {_PENDING} AND state = 'received' ORDER BY id LIMIT 1"
            )
            .fetchone()
        )
        if row is None or row["next_attempt_ts"] > time.time():
            return None  # strict order: a notification waiting to retry holds back the ones after it
        return _notification(row)

    def apply(
        self, notification_id: int, fn: Callable[[IncidentWriter], list[dict[str, Any]]]
    ) -> list[dict[str, Any]] | None:
        # not fsynced: if lost on power failure, the notification is still 'received' and is re-applied
        with self.transaction(durable=False) as conn:
            row = conn.execute("SELECT state FROM notifications WHERE id = ?", (notification_id,)).fetchone()
            if row is None or row["state"] != "received":
                return None
            now = utc_now()
            events = fn(_Writer(conn, notification_id, now))
            # no events (a repeat, a retry, a flush that changed nothing): nothing for the responder,
            # so it is done at once instead of costing two more write transactions
            conn.execute(
                "UPDATE notifications SET state = ?, events = ?, applied_at = ?, attempts = 0,"
                " last_error = NULL, next_attempt_ts = 0, done_at = ? WHERE id = ?",
                (
                    "applied" if events else "done",
                    json.dumps(events, sort_keys=True),
                    now,
                    None if events else now,
                    notification_id,
                ),
            )
            return events

    def claim_applied(self, lease_seconds: float = 30.0) -> NotificationRecord | None:
        now = time.time()
        due = (
            self.connection()
            .execute(
                f"SELECT 1 FROM notifications WHERE {_PENDING} AND state = 'applied' AND next_attempt_ts <= ?"
                " AND lease_until_ts <= ?"
                " LIMIT 1",
                (now, now),
            )
            .fetchone()
        )
        if due is None:  # cheap read first: no write lock while idle
            return None
        with self.transaction(durable=False) as conn:
            row = conn.execute(
                f"""SELECT * FROM notifications WHERE {_PENDING} AND state = 'applied'
                   AND next_attempt_ts <= ? AND lease_until_ts <= ? ORDER BY id LIMIT 1""",
                (now, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE notifications SET lease_until_ts = ? WHERE id = ?", (now + lease_seconds, row["id"])
            )
            return _notification(row)

    def mark_done(self, notification_id: int) -> None:
        # not fsynced: lost on power failure means the (idempotent) responder sees the events again
        with self.transaction(durable=False) as conn:
            conn.execute(
                "UPDATE notifications SET state = 'done', done_at = ?, lease_until_ts = 0 WHERE id = ?",
                (utc_now(), notification_id),
            )

    def mark_retry(self, notification_id: int, error: str, *, delay: float, max_attempts: int) -> str:
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT attempts FROM notifications WHERE id = ?", (notification_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"notification {notification_id} does not exist")
            attempts = int(row["attempts"]) + 1
            state = "failed" if attempts >= max_attempts else None
            conn.execute(
                """UPDATE notifications SET attempts = ?, last_error = ?, next_attempt_ts = ?,
                   lease_until_ts = 0,
                   state = COALESCE(?, state) WHERE id = ?""",
                (attempts, error[:2000], time.time() + delay, state, notification_id),
            )
            final = conn.execute(
                "SELECT state FROM notifications WHERE id = ?", (notification_id,)
            ).fetchone()
            return str(final["state"])

    def pending_count(self) -> int:
        row = self.connection().execute(f"SELECT COUNT(*) FROM notifications WHERE {_PENDING}").fetchone()
        return int(row[0])

    def notification_counts(self) -> dict[str, int]:
        rows = (
            self.connection().execute("SELECT state, COUNT(*) FROM notifications GROUP BY state").fetchall()
        )
        return {r[0]: int(r[1]) for r in rows}

    # -- incidents (read side) ---------------------------------------------------------------------------

    def list_incidents(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        runbook: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[IncidentRecord]:
        clauses: list[str] = ["id < ?"]
        params: list[object] = [before_id if before_id is not None else 2**62]
        for column, value in (("state", state), ("model", model), ("runbook_id", runbook)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        rows = (
            self.connection()
            .execute(
                f"SELECT * FROM incidents WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [_incident(r) for r in rows]

    def get_incident(self, incident_id: int) -> IncidentDetail:
        conn = self.connection()
        row = conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        alerts = [
            AlertRecord(
                fingerprint=r["fingerprint"],
                alertname=r["alertname"],
                status=r["status"],
                starts_at=r["starts_at"],
                ends_at=r["ends_at"],
                labels=_loads(r["labels"], {}),
                annotations=_loads(r["annotations"], {}),
                generator_url=r["generator_url"],
            )
            for r in conn.execute(
                """SELECT ia.fingerprint, ia.status, ia.starts_at, ia.ends_at, a.alertname, a.labels,
                          a.annotations, a.generator_url
                   FROM incident_alerts ia JOIN alerts a ON a.fingerprint = ia.fingerprint
                   WHERE ia.incident_id = ? ORDER BY ia.joined_at, ia.fingerprint""",
                (incident_id,),
            )
        ]
        timeline = [
            TimelineEntry(
                id=r["id"],
                incident_id=r["incident_id"],
                at=r["at"],
                kind=r["kind"],
                message=r["message"],
                data=_loads(r["data"], {}),
                notification_id=r["notification_id"],
            )
            for r in conn.execute("SELECT * FROM timeline WHERE incident_id = ? ORDER BY id", (incident_id,))
        ]
        return IncidentDetail(incident=_incident(row), alerts=alerts, timeline=timeline)

    def incident_counts(self) -> dict[tuple[str, str], int]:
        rows = (
            self.connection()
            .execute("SELECT state, severity, COUNT(*) FROM incidents GROUP BY state, severity")
            .fetchall()
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def check_writable(self) -> None:
        try:
            with self.transaction() as conn:
                # a real (no-op valued) write, so a read-only file or full disk shows up here
                conn.execute(
                    "UPDATE schema_version SET applied_at = applied_at"
                    " WHERE version = (SELECT MAX(version) FROM schema_version)"
                )
        except sqlite3.Error as exc:
            raise _unavailable(exc, "write") from exc

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
