"""Writes to an incident outside notification processing: timeline entries, state, acknowledgement.

The responder, the scheduler and the admin API use these; every write is one short transaction, and timeline
entries with a ``dedupe_key`` are recorded once per incident however often the caller retries.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from receiver.errors import NotFound, ReceiverError
from receiver.store.sqlite import SQLiteStore

__all__ = ["IncidentLog", "InvalidTransition", "utc_stamp"]

#: Allowed state changes (DESIGN.md: open → contained → resolved → closed; resolve and close may skip).
_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("contained", "resolved"),
    "contained": ("resolved",),
    "resolved": ("closed",),
    "closed": (),
}


class InvalidTransition(ReceiverError):
    http_status = 409


def utc_stamp(ts: float | None = None) -> str:
    moment = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _append(
    conn: sqlite3.Connection,
    incident_id: int,
    at: str,
    kind: str,
    message: str,
    data: Mapping[str, Any] | None,
    dedupe_key: str | None,
) -> bool:
    """Insert one timeline entry inside the caller's transaction; False if ``dedupe_key`` already exists."""
    cursor = conn.execute(
        """INSERT OR IGNORE INTO timeline (incident_id, at, kind, message, data, dedupe_key)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (
            incident_id,
            at,
            kind,
            message,
            json.dumps(dict(data or {}), sort_keys=True, default=str),
            dedupe_key,
        ),
    )
    return cursor.rowcount == 1


class IncidentLog:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def add(
        self,
        incident_id: int,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> bool:
        """Append a timeline entry; False when ``dedupe_key`` was recorded before."""
        with self.store.transaction() as conn:
            return _append(conn, incident_id, utc_stamp(), kind, message, data, dedupe_key)

    def has(self, incident_id: int, dedupe_key: str) -> bool:
        row = (
            self.store.connection()
            .execute(
                "SELECT 1 FROM timeline WHERE incident_id = ? AND dedupe_key = ?", (incident_id, dedupe_key)
            )
            .fetchone()
        )
        return row is not None

    def state(self, incident_id: int) -> dict[str, Any]:
        row = (
            self.store.connection()
            .execute(
                """SELECT state, severity, acknowledged_at, acknowledged_by, contained_at, escalated_at
               FROM incidents WHERE id = ?""",
                (incident_id,),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return dict(row)

    def transition(
        self,
        incident_id: int,
        to_state: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        allowed_from: tuple[str, ...] | None = None,
    ) -> bool:
        """Move the incident to ``to_state`` with a timeline entry; False if it already is there.

        Raises :class:`InvalidTransition` for a change the lifecycle does not allow (e.g. reopening).
        """
        now = utc_stamp()
        stamp_column = {"contained": "contained_at", "resolved": "resolved_at", "closed": "closed_at"}[
            to_state
        ]
        with self.store.transaction() as conn:
            row = conn.execute("SELECT state FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            current = row["state"]
            if current == to_state:
                return False
            permitted = (
                allowed_from
                if allowed_from is not None
                else tuple(s for s, targets in _TRANSITIONS.items() if to_state in targets)
            )
            if current not in permitted:
                raise InvalidTransition(f"incident {incident_id} is {current}; it cannot become {to_state}")
            conn.execute(
                f"UPDATE incidents SET state = ?, updated_at = ?, {stamp_column} = ? WHERE id = ?",
                (to_state, now, now, incident_id),
            )
            _append(conn, incident_id, now, to_state, message, data, f"state:{to_state}")
            return True

    def record_contained(self, incident_id: int, message: str, data: Mapping[str, Any] | None = None) -> bool:
        """Record that containment was verified without changing the state (already resolved)."""
        now = utc_stamp()
        with self.store.transaction() as conn:
            added = _append(conn, incident_id, now, "contained", message, data, "state:contained")
            if added:
                conn.execute(
                    "UPDATE incidents SET contained_at = ? WHERE id = ? AND contained_at IS NULL",
                    (now, incident_id),
                )
            return added

    def acknowledge(self, incident_id: int, actor: str, note: str = "") -> bool:
        now = utc_stamp()
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT acknowledged_at FROM incidents WHERE id = ?", (incident_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            if row["acknowledged_at"]:
                return False
            conn.execute(
                "UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ?, updated_at = ? WHERE id = ?",
                (now, actor, now, incident_id),
            )
            message = f"acknowledged by {actor}" + (f": {note}" if note else "")
            _append(
                conn,
                incident_id,
                now,
                "acknowledged",
                message,
                {"actor": actor, "note": note},
                "acknowledged",
            )
            return True

    def mark_escalated(self, incident_id: int) -> bool:
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "UPDATE incidents SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL",
                (utc_stamp(), incident_id),
            )
            return cursor.rowcount == 1

    def raise_severity(self, incident_id: int, level: str, reason: str) -> bool:
        """Raise (never lower) the severity, with a timeline entry; False when it is already as severe."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT severity FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            if row["severity"] <= level:  # "SEV1" < "SEV2": lower number is more severe
                return False
            now = utc_stamp()
            conn.execute(
                "UPDATE incidents SET severity = ?, updated_at = ? WHERE id = ?", (level, now, incident_id)
            )
            message = f"severity raised {row['severity']} -> {level}: {reason}"
            data = {"from": row["severity"], "to": level, "reason": reason}
            _append(conn, incident_id, now, "severity", message, data, f"severity:{level}")
            return True
