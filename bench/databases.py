"""Where a benchmark's receiver state lives, and counting it from there (never from a process's memory).

``--database-url`` names an existing PostgreSQL; ``--database-url temp`` starts a throwaway PostgreSQL 15
on loopback (tests/support/postgres.py: ``initdb`` into a temporary directory, run as the ``postgres``
user when root); without it the receiver uses SQLite in its data directory. The benches read the same
tables as ``tests/integration/test_ha.py`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["count", "database", "open_bench_store"]


@contextmanager
def database(url: str | None) -> Iterator[str | None]:
    """The database URL the receivers get: None (SQLite), ``url``, or a fresh temporary PostgreSQL's."""
    if url != "temp":
        yield url
        return
    from tests.support.postgres import start_postgres

    server = start_postgres()
    try:
        yield server.create_database("bench")
    finally:
        server.destroy()


def open_bench_store(database_url: str | None, data_dir: Path) -> Any:
    """A read handle on the receivers' store (no migration: the receivers did that)."""
    from receiver.store import open_database_store, open_store

    if database_url:
        return open_database_store(database_url, migrate=False, pool_size=2)
    return open_store(data_dir, migrate=False)


def count(store: Any, sql: str, params: tuple[Any, ...] = ()) -> int:
    """One ``SELECT COUNT(*)`` (``?`` placeholders work on both backends)."""
    with store.db.read() as tx:
        return int(tx.execute(sql, params).fetchone()[0])
