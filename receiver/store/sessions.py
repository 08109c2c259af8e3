"""The console's sign-in sessions: durable rows, so any replica accepts a session another one created.

The cookie carries a random token; the row is keyed by its SHA-256, so a leaked database (or backup) holds
no usable session. Each session carries its own CSRF token. Expired rows are refused on read and pruned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from receiver.store.sql import Clock, Database

__all__ = ["ConsoleSession", "SqlSessions", "token_hash"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    username: str
    role: str  # viewer | responder | admin
    method: str  # token | password | proxy
    csrf_token: str
    created_at: float
    expires_at: float


def _session(row: Any) -> ConsoleSession:
    return ConsoleSession(
        row["username"],
        row["role"],
        row["method"],
        row["csrf_token"],
        float(row["created_at"]),
        float(row["expires_at"]),
    )


class SqlSessions:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def create(
        self, token: str, *, username: str, role: str, method: str, csrf_token: str, lifetime: float
    ) -> ConsoleSession:
        now = self.clock()
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
            tx.execute(
                """INSERT INTO console_sessions
                       (token_hash, username, role, method, csrf_token, created_at, expires_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (token_hash(token), username, role, method, csrf_token, now, now + lifetime),
            )
        return ConsoleSession(username, role, method, csrf_token, now, now + lifetime)

    def get(self, token: str) -> ConsoleSession | None:
        """The live session of ``token``; None when unknown or expired."""
        with self.db.read() as tx:
            row = tx.execute(
                "SELECT username, role, method, csrf_token, created_at, expires_at FROM console_sessions"
                " WHERE token_hash = ? AND expires_at >= ?",
                (token_hash(token), self.clock()),
            ).fetchone()
        return _session(row) if row is not None else None

    def delete(self, token: str) -> bool:
        with self.db.transaction() as tx:
            cursor = tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash(token),))
            return cursor.rowcount == 1

    def prune(self) -> int:
        with self.db.transaction(durable=False) as tx:
            return tx.execute("DELETE FROM console_sessions WHERE expires_at < ?", (self.clock(),)).rowcount
