"""The durable store: the only code that speaks SQL. :func:`open_store` picks the backend from settings.

SQLite (``receiver.db`` in ``--data-dir``) is the embedded default for one host; PostgreSQL
(``--database-url postgresql://…``) lets several replicas share the work. Both are :class:`SqlStore`\\s over
the same aggregates (see :mod:`receiver.store.base` for the protocols everything above depends on).
"""

from __future__ import annotations

import time
from pathlib import Path

from receiver.store.base import (
    ActionLedger,
    AlertRecord,
    IncidentDetail,
    IncidentRecord,
    IncidentStore,
    IncidentWriter,
    IngestQueue,
    NotificationRecord,
    OutboxRows,
    RejectedRecord,
    Store,
    TimelineEntry,
    TimerQueue,
)
from receiver.store.facade import SQLiteStore, SqlStore
from receiver.store.sql import Clock

__all__ = [
    "DB_FILENAME",
    "ActionLedger",
    "AlertRecord",
    "IncidentDetail",
    "IncidentRecord",
    "IncidentStore",
    "IncidentWriter",
    "IngestQueue",
    "NotificationRecord",
    "OutboxRows",
    "RejectedRecord",
    "SQLiteStore",
    "SqlStore",
    "Store",
    "TimelineEntry",
    "TimerQueue",
    "open_database_store",
    "open_store",
]

#: The database file inside ``--data-dir``.
DB_FILENAME = "receiver.db"


def open_store(
    data_dir: Path,
    *,
    rejected_body_cap: int = 64 * 1024,
    busy_timeout_ms: int = 5000,
    clock: Clock = time.time,
    migrate: bool = True,
) -> SQLiteStore:
    """Create ``data_dir`` if missing, open ``receiver.db`` in it and migrate it forward.

    Raises :class:`receiver.errors.StoreError` if the database is newer than this code.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(
        data_dir / DB_FILENAME,
        rejected_body_cap=rejected_body_cap,
        busy_timeout_ms=busy_timeout_ms,
        clock=clock,
    )
    try:
        if migrate:
            store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def open_database_store(
    url: str,
    *,
    password_file: Path | None = None,
    rejected_body_cap: int = 64 * 1024,
    pool_size: int = 10,
    clock: Clock = time.time,
    migrate: bool = True,
) -> SqlStore:
    """Open the PostgreSQL store at ``url`` (``postgresql://user@host:port/db``) and migrate it forward
    under an advisory lock (replicas starting together apply each migration once)."""
    from receiver.store.postgres_db import PostgresDatabase

    store = SqlStore(
        PostgresDatabase(url, password_file=password_file, pool_size=pool_size),
        clock=clock,
        rejected_body_cap=rejected_body_cap,
    )
    try:
        if migrate:
            store.migrate()
    except BaseException:
        store.close()
        raise
    return store
