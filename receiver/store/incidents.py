"""Alerts, incidents and their timeline; the incident lifecycle is enforced here, in :func:`check_transition`.

Two ways in. :class:`~receiver.store.incident_writer.Writer` is what :mod:`receiver.incidents` sees *inside*
one notification's transaction (everything it writes commits together with the notification's change of
state, or not at all). :class:`SqlIncidents` is everything else: the read side, and the short transactions
the responder, the scheduler and people (API, CLI) make: timeline entries, transitions, acknowledgement,
severity.

Exactly once comes from keys, never from memory: an alert state is one row per (fingerprint, status,
startsAt); one live incident per (runbook, key) by a unique partial index, taken under a lock on the key so
concurrent replicas wait instead of failing; a timeline entry with a ``dedupe_key`` is recorded once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from receiver.errors import NotFound, ReceiverError
from receiver.store.base import AlertRecord, IncidentDetail, IncidentRecord, TimelineEntry
from receiver.store.sql import Clock, Database, Tx, utc_stamp

__all__ = ["InvalidTransition", "SqlIncidents", "check_transition"]

LIVE_STATES = ("open", "contained")
#: Allowed state changes (DESIGN.md: open → contained → resolved → closed; resolve and close may skip).
_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("contained", "resolved"),
    "contained": ("resolved",),
    "resolved": ("closed",),
    "closed": (),
}
_STAMP_COLUMN = {"contained": "contained_at", "resolved": "resolved_at", "closed": "closed_at"}


class InvalidTransition(ReceiverError):
    http_status = 409


def check_transition(
    incident_id: int, current: str, to_state: str, allowed_from: tuple[str, ...] | None = None
) -> bool:
    """True if the incident must move, False if it already is there; raises for a forbidden move."""
    if current == to_state:
        return False
    permitted = (
        allowed_from
        if allowed_from is not None
        else tuple(s for s, targets in _TRANSITIONS.items() if to_state in targets)
    )
    if current not in permitted:
        raise InvalidTransition(f"incident {incident_id} is {current}; it cannot become {to_state}")
    return True


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def _incident(row: Any) -> IncidentRecord:
    return IncidentRecord(
        id=int(row["id"]),
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
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        contained_at=row["contained_at"],
        escalated_at=row["escalated_at"],
    )


def _append(
    tx: Tx,
    incident_id: int,
    at: str,
    kind: str,
    message: str,
    data: Mapping[str, Any] | None,
    dedupe_key: str | None,
    notification_id: int | None = None,
) -> bool:
    """Insert one timeline entry inside ``tx``; False if ``dedupe_key`` is already on the incident."""
    cursor = tx.execute(
        """INSERT INTO timeline (incident_id, at, kind, message, data, dedupe_key, notification_id)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
        (
            incident_id,
            at,
            kind,
            message,
            json.dumps(dict(data or {}), sort_keys=True, default=str),
            dedupe_key,
            notification_id,
        ),
    )
    return cursor.rowcount == 1


def _set_state(tx: Tx, incident_id: int, current: str, to_state: str, now: str, **check: Any) -> bool:
    if not check_transition(incident_id, current, to_state, **check):
        return False
    column = _STAMP_COLUMN[to_state]
    tx.execute(
        f"UPDATE incidents SET state = ?, updated_at = ?, {column} = COALESCE({column}, ?) WHERE id = ?",
        (to_state, now, now, incident_id),
    )
    return True


class SqlIncidents:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    # -- reads -------------------------------------------------------------------------------------------
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
        with self.db.read() as tx:
            rows = tx.execute(
                f"SELECT * FROM incidents WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_incident(r) for r in rows]

    def get_incident(self, incident_id: int) -> IncidentDetail:
        with self.db.read() as tx:
            row = tx.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            alert_rows = tx.execute(
                """SELECT ia.fingerprint, ia.status, ia.starts_at, ia.ends_at, a.alertname, a.labels,
                          a.annotations, a.generator_url
                   FROM incident_alerts ia JOIN alerts a ON a.fingerprint = ia.fingerprint
                   WHERE ia.incident_id = ? ORDER BY ia.joined_at, ia.fingerprint""",
                (incident_id,),
            ).fetchall()
            timeline_rows = tx.execute(
                "SELECT * FROM timeline WHERE incident_id = ? ORDER BY id", (incident_id,)
            ).fetchall()
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
            for r in alert_rows
        ]
        timeline = [
            TimelineEntry(
                id=int(r["id"]),
                incident_id=int(r["incident_id"]),
                at=r["at"],
                kind=r["kind"],
                message=r["message"],
                data=_loads(r["data"], {}),
                notification_id=r["notification_id"],
            )
            for r in timeline_rows
        ]
        return IncidentDetail(incident=_incident(row), alerts=alerts, timeline=timeline)

    def incident_counts(self) -> dict[tuple[str, str], int]:
        with self.db.read() as tx:
            rows = tx.execute(
                "SELECT state, severity, COUNT(*) FROM incidents GROUP BY state, severity"
            ).fetchall()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def has_timeline(self, incident_id: int, dedupe_key: str) -> bool:
        with self.db.read() as tx:
            row = tx.execute(
                "SELECT 1 FROM timeline WHERE incident_id = ? AND dedupe_key = ?", (incident_id, dedupe_key)
            ).fetchone()
        return row is not None

    # -- writes outside notification processing ----------------------------------------------------------
    def add_timeline(
        self,
        incident_id: int,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> bool:
        """Append a timeline entry; False when ``dedupe_key`` was recorded before."""
        with self.db.transaction() as tx:
            return _append(tx, incident_id, utc_stamp(self.clock()), kind, message, data, dedupe_key)

    def _locked(self, tx: Tx, incident_id: int) -> Any:
        row = tx.execute(f"SELECT * FROM incidents WHERE id = ?{tx.locking}", (incident_id,)).fetchone()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return row

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
        now = utc_stamp(self.clock())
        with self.db.transaction() as tx:
            current = self._locked(tx, incident_id)["state"]
            if not _set_state(tx, incident_id, current, to_state, now, allowed_from=allowed_from):
                return False
            _append(tx, incident_id, now, to_state, message, data, f"state:{to_state}")
            return True

    def record_contained(self, incident_id: int, message: str, data: Mapping[str, Any] | None = None) -> bool:
        """Record that containment was verified without changing the state (already resolved)."""
        now = utc_stamp(self.clock())
        with self.db.transaction() as tx:
            added = _append(tx, incident_id, now, "contained", message, data, "state:contained")
            if added:
                tx.execute(
                    "UPDATE incidents SET contained_at = ? WHERE id = ? AND contained_at IS NULL",
                    (now, incident_id),
                )
            return added

    def acknowledge(self, incident_id: int, actor: str, note: str = "") -> bool:
        now = utc_stamp(self.clock())
        with self.db.transaction() as tx:
            if self._locked(tx, incident_id)["acknowledged_at"]:
                return False
            tx.execute(
                "UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ?, updated_at = ? WHERE id = ?",
                (now, actor, now, incident_id),
            )
            message = f"acknowledged by {actor}" + (f": {note}" if note else "")
            _append(
                tx, incident_id, now, "acknowledged", message, {"actor": actor, "note": note}, "acknowledged"
            )
            return True

    def mark_escalated(self, incident_id: int) -> bool:
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE incidents SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL",
                (utc_stamp(self.clock()), incident_id),
            )
            return cursor.rowcount == 1

    def raise_severity(self, incident_id: int, level: str, reason: str) -> bool:
        """Raise (never lower) the severity, with a timeline entry; False when it is already as severe."""
        with self.db.transaction() as tx:
            current = self._locked(tx, incident_id)["severity"]
            if current <= level:  # "SEV1" < "SEV2": lower number is more severe
                return False
            now = utc_stamp(self.clock())
            tx.execute(
                "UPDATE incidents SET severity = ?, updated_at = ? WHERE id = ?", (level, now, incident_id)
            )
            message = f"severity raised {current} -> {level}: {reason}"
            data = {"from": current, "to": level, "reason": reason}
            _append(tx, incident_id, now, "severity", message, data, f"severity:{level}")
            return True
