"""The durable store: the :class:`Store` protocol, its SQLite implementation and :func:`open_store`."""

from __future__ import annotations

from pathlib import Path

from receiver.store.base import (
    AlertRecord,
    IncidentDetail,
    IncidentRecord,
    IncidentWriter,
    NotificationRecord,
    RejectedRecord,
    Store,
    TimelineEntry,
)
from receiver.store.sqlite import SQLiteStore

__all__ = [
    "DB_FILENAME",
    "AlertRecord",
    "IncidentDetail",
    "IncidentRecord",
    "IncidentWriter",
    "NotificationRecord",
    "RejectedRecord",
    "SQLiteStore",
    "Store",
    "TimelineEntry",
    "open_store",
]

#: The database file inside ``--data-dir``.
DB_FILENAME = "receiver.db"


def open_store(
    data_dir: Path, *, rejected_body_cap: int = 64 * 1024, busy_timeout_ms: int = 5000
) -> SQLiteStore:
    """Create ``data_dir`` if missing, open ``receiver.db`` in it and migrate it forward.

    Raises :class:`receiver.errors.StoreError` if the database is newer than this code.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(
        data_dir / DB_FILENAME, rejected_body_cap=rejected_body_cap, busy_timeout_ms=busy_timeout_ms
    )
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
