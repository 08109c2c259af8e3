"""Pooled PostgreSQL connections are checked before use only after a second idle (real PostgreSQL 15).

A check is one round trip; in steady use it was one in four of the webhook's. The trade-off, pinned here:
a connection killed while in steady use fails its next use once (StoreUnavailable: the webhook answers 503,
the worker retries) and the pool replaces it; one killed while idle a second or more is caught by the check.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from receiver.errors import StoreUnavailable
from receiver.store.postgres_db import _CHECK_AFTER_IDLE, PostgresDatabase


def _kill_receiver_connections(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'test-pool' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(killed[0]) if killed else 0


def _read(db: PostgresDatabase) -> int:
    with db.read() as tx:
        return int(tx.execute("SELECT 1").fetchone()[0])


def test_a_connection_killed_in_steady_use_fails_once_then_is_replaced(pg_url: str) -> None:
    db = PostgresDatabase(pg_url, pool_size=2, application_name="test-pool")
    try:
        assert _read(db) == 1
        assert _kill_receiver_connections(pg_url) >= 1
        with pytest.raises(StoreUnavailable):
            _read(db)  # used a moment ago: not checked, and it is dead
        assert _read(db) == 1  # the pool dropped it and connects anew
    finally:
        db.close()


def test_a_connection_killed_while_idle_is_caught_by_the_check(pg_url: str) -> None:
    db = PostgresDatabase(pg_url, pool_size=2, application_name="test-pool")
    try:
        assert _read(db) == 1
        assert _kill_receiver_connections(pg_url) >= 1
        time.sleep(_CHECK_AFTER_IDLE + 0.2)
        assert _read(db) == 1  # checked before use, found dead, replaced: the caller never sees it
    finally:
        db.close()
