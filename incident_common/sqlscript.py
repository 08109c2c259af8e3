"""Splitting an SQL script into statements, for running it inside a transaction we control.

``sqlite3.Connection.executescript`` commits any open transaction first, so schema changes that must sit
inside our own ``BEGIN IMMEDIATE`` (the store's migrations, the ledger's schema, the model registry's
upgrades) execute the statements one by one instead.
"""

from __future__ import annotations

import sqlite3

__all__ = ["split_sql"]


def split_sql(script: str) -> list[str]:
    """The statements of ``script``, split where SQLite says a statement is complete, so a ``;`` inside a
    string, a comment or a trigger's ``BEGIN ... END;`` does not split it."""
    statements: list[str] = []
    buffer = ""
    pieces = script.split(";")
    for index, piece in enumerate(pieces):
        buffer += piece if index == len(pieces) - 1 else piece + ";"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())  # a trailing statement without ";" (or only a comment)
    return statements
