"""PostgreSQL as a :class:`~receiver.store.sql.Database`: psycopg 3 with a ``psycopg_pool`` connection pool.

Several receiver replicas share one database, so this is where "exactly once" is enforced for them:
claiming ``SELECT``\\s take ``FOR UPDATE SKIP LOCKED`` (two replicas never claim one row, and neither waits
for the other), read-check-write sequences take a transaction-scoped advisory lock on their key
(:meth:`_PgTx.lock`), and unique keys do the rest. Commits are durable (``synchronous_commit`` on) before
the webhook's 200.

While PostgreSQL is unreachable every call raises :class:`StoreUnavailable` (the webhook answers 503 and
Alertmanager retries); the pool checks connections before handing them out and reconnects by itself, so
the receiver recovers without a restart. Migrations run under a session advisory lock, so replicas starting
together apply each one once. The password comes from the URL, ``PGPASSWORD``, or a file
(``database_password_file``); :attr:`description` never shows it.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from receiver.errors import ConfigError, StoreError, StoreUnavailable
from receiver.store.migrate import MIGRATIONS_ROOT, discover_migrations, refuse_newer
from receiver.store.sql import Cursor, utc_stamp
from receiver.store.sqlscript import split_sql

__all__ = ["PostgresDatabase", "redact_url"]

#: the session advisory lock held while migrating ("rcvrmigr" as a number)
_MIGRATION_LOCK = 0x7263767200
_PLACEHOLDER = re.compile(r"\?")
#: a pooled connection is checked with a round trip before use only when idle at least this long: one in
#: steady use has just proven itself, and the check was one round trip more per transaction (a quarter of
#: the webhook's). If the server went away in that second, the first use fails (StoreUnavailable: 503,
#: retried) and the pool drops the connection.
_CHECK_AFTER_IDLE = 1.0


def _check_if_idle(conn: Any) -> None:
    if time.monotonic() - getattr(conn, "_receiver_used_at", 0.0) >= _CHECK_AFTER_IDLE:
        _check_connection(conn)


def _check_connection(conn: Any) -> None:
    from psycopg_pool import ConnectionPool

    ConnectionPool.check_connection(conn)


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _pg_sql(sql: str) -> str:
    """Our ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled first)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for ``key`` (two CRCs: cheap, stable across processes)."""
    data = key.encode()
    value = (zlib.crc32(data) << 32) | zlib.crc32(data[::-1] + b"#")
    return value - (1 << 64) if value >= 1 << 63 else value


class _Row(tuple[Any, ...]):
    """A row readable by position and by column name, like ``sqlite3.Row``."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> _Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    names = [column.name for column in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}

    def make(values: Sequence[Any]) -> _Row:
        return _Row(values, index)

    return make


class _PgTx:
    locking = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self.conn.execute(_pg_sql(sql), tuple(params) if params else None)
        return cursor

    def lock(self, key: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(key),))


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        password_file: Path | None = None,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        migrations_dir: Path | None = None,
        application_name: str = "receiver",
    ) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - the postgres extra is missing
            raise ConfigError(
                "database_url is postgresql:// but psycopg is not installed; "
                "install the receiver with its 'postgres' extra"
            ) from exc
        self._psycopg = psycopg
        self.url = url.replace("postgres://", "postgresql://", 1)
        self.description = redact_url(self.url)
        self.migrations_dir = migrations_dir or MIGRATIONS_ROOT / "postgresql"
        self.connect_timeout = connect_timeout
        kwargs: dict[str, Any] = {
            "connect_timeout": max(1, int(connect_timeout)),
            "application_name": application_name,
        }
        if password_file is not None:
            try:
                kwargs["password"] = Path(password_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"setting 'database_password_file': cannot read {password_file}: {exc.strerror}"
                ) from None
        self._connect_kwargs = kwargs
        self._pool = ConnectionPool(
            self.url,
            kwargs=kwargs,
            min_size=1,
            max_size=max(2, pool_size),
            timeout=connect_timeout,
            check=_check_if_idle,
            open=False,
            name="receiver-store",
            reconnect_timeout=0,  # never give up reconnecting: the database may come back
        )
        self._pool.open(wait=False)

    # -- connections -------------------------------------------------------------------------------------
    @contextmanager
    def _connection(self, doing: str) -> Iterator[Any]:
        psycopg = self._psycopg
        try:
            with self._pool.connection(timeout=self.connect_timeout) as conn:
                conn.row_factory = _row_factory
                try:
                    yield conn
                finally:
                    conn._receiver_used_at = time.monotonic()
        except psycopg.errors.UniqueViolation as exc:
            raise StoreError(f"store cannot {doing}: {exc}") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(f"store cannot {doing} ({self.description}): {exc}") from exc
        except psycopg.errors.DeadlockDetected as exc:
            raise StoreUnavailable(f"store cannot {doing}: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"store cannot {doing}: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise StoreUnavailable(
                    f"store cannot {doing}: no connection to {self.description} within "
                    f"{self.connect_timeout:g}s"
                ) from exc
            raise

    @contextmanager
    def read(self) -> Iterator[_PgTx]:
        with self._connection("read") as conn:
            conn.autocommit = True
            yield _PgTx(conn)

    @contextmanager
    def transaction(self, *, durable: bool = True, urgent: bool = False) -> Iterator[_PgTx]:
        with self._connection("write") as conn:
            conn.autocommit = False
            with conn.transaction():
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit = off")
                yield _PgTx(conn)

    def insert_many(self, sql_head: str, rows: Sequence[Sequence[Any]], *, urgent: bool) -> list[int]:
        width = len(rows[0])
        marks = "(" + ", ".join("?" * width) + ")"
        params = [value for row in rows for value in row]
        # one statement in autocommit is its own (atomic, durable) transaction: one round trip, where
        # BEGIN / INSERT / COMMIT took three
        with self._connection("write") as conn:
            conn.autocommit = True
            statement = sql_head + " " + ",".join([marks] * len(rows)) + " RETURNING id"
            found = _PgTx(conn).execute(statement, params).fetchall()
        return sorted(int(r[0]) for r in found)  # one statement, one sequence: ids ascend in row order

    # -- schema ------------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.read() as tx:
            exists = tx.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
            if not exists:
                return 0
            return int(tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])

    def newest_migration(self) -> int:
        found = discover_migrations(self.migrations_dir)
        return found[-1].version if found else 0

    def migrate(self) -> list[int]:
        """Apply every pending migration, each in its own transaction, under a session advisory lock."""
        migrations = discover_migrations(self.migrations_dir)
        applied: list[int] = []
        with self._connection("migrate") as conn:
            conn.autocommit = True
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                current = int(
                    conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
                )
                refuse_newer(current, migrations, self.description)
                for migration in migrations:
                    if migration.version <= current:
                        continue
                    try:
                        with conn.transaction():
                            for statement in split_sql(migration.path.read_text()):
                                conn.execute(statement)
                            conn.execute(
                                "INSERT INTO schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
                                (migration.version, migration.name, utc_stamp(time.time())),
                            )
                    except self._psycopg.Error as exc:
                        raise StoreError(f"migration {migration.path.name} failed: {exc}") from exc
                    applied.append(migration.version)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        return applied

    def listen(self, channel: str, on_notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_notify`` on each NOTIFY on ``channel`` (a thread with its own connection); returns
        the function that stops listening."""
        from receiver.store.pg_listen import PgListener

        def connect() -> Any:
            return self._psycopg.connect(self.url, autocommit=True, **self._connect_kwargs)

        listener = PgListener(connect, channel, on_notify, description=self.description).start()
        return listener.stop

    def close(self) -> None:
        self._pool.close()
