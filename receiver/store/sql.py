"""The seam between the store's aggregates and a SQL backend: one SQL text, two dialects.

Every aggregate (:mod:`.ingest`, :mod:`.incidents`, :mod:`.timers`, :mod:`.ledger`, :mod:`.outbox`) is
written once against :class:`Database` and :class:`Tx`, in the SQL that SQLite 3.35+ and PostgreSQL 15 share
(``?`` placeholders, ``ON CONFLICT``, ``RETURNING``, ``IS NOT DISTINCT FROM``, partial indexes). What really
differs is said through three hooks instead of a second copy of every query:

* :attr:`Tx.locking` / :attr:`Tx.skip_locked`: the ``FOR UPDATE [SKIP LOCKED]`` suffix of a claiming
  ``SELECT`` on PostgreSQL (several replicas claim concurrently); empty on SQLite, whose ``BEGIN IMMEDIATE``
  already serializes every writer.
* :meth:`Tx.lock`: serialize a read-check-write on a key (a transaction-scoped advisory lock on
  PostgreSQL; nothing on SQLite, for the same reason).
* :meth:`Database.insert_many`: the webhook's group commit, one multi-row ``INSERT`` returning the ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["Clock", "Database", "Row", "Tx", "utc_stamp"]

#: Seconds since the epoch; injected everywhere so tests can move time.
Clock = Callable[[], float]


def utc_stamp(ts: float) -> str:
    """The store's text timestamp, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (sorts as it reads)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Row(Protocol):
    """A result row: by position and by column name (``sqlite3.Row`` is one; PostgreSQL rows mimic it)."""

    def __getitem__(self, key: int | str) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """One open transaction (or, from :meth:`Database.read`, an autocommit read connection)."""

    locking: str  # " FOR UPDATE" on PostgreSQL, "" on SQLite
    skip_locked: str  # " FOR UPDATE SKIP LOCKED" on PostgreSQL, "" on SQLite

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def lock(self, key: str) -> None:
        """Hold ``key`` until this transaction ends, so read-check-write sequences on it serialize."""


class Database(Protocol):
    """A connection source of one dialect. Errors of the driver surface as ``StoreUnavailable``."""

    dialect: str  # "sqlite" | "postgresql"
    description: str  # where it is, for logs and errors; never a password

    def transaction(self, *, durable: bool = True, urgent: bool = False) -> AbstractContextManager[Tx]:
        """Commit on a normal exit, roll back on any exception.

        ``urgent``: the webhook's own writes, which go ahead of background writers where the backend
        queues writers (SQLite). ``durable=False``: may skip the fsync where the backend allows it, for
        work that is redone idempotently from a durable record.
        """

    def read(self) -> AbstractContextManager[Tx]:
        """A connection for reads outside any transaction of ours."""

    def insert_many(self, sql_head: str, rows: Sequence[Sequence[Any]], *, urgent: bool) -> list[int]:
        """``sql_head`` (``INSERT INTO t (a, b) VALUES``) for every row, committed durably as one
        statement; returns the new ids in row order."""

    def migrate(self) -> list[int]:
        """Apply pending migrations once (even with several processes starting together)."""

    def listen(self, channel: str, on_notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_notify`` when another process signals ``channel`` (a hint: where the backend has no
        such signal, never); returns the function that stops listening."""

    def schema_version(self) -> int: ...

    def newest_migration(self) -> int: ...

    def close(self) -> None: ...
