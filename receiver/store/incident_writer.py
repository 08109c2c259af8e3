"""The incident writes of one notification, inside the transaction that marks it applied.

:class:`Writer` is the :class:`~receiver.store.base.IncidentWriter` that :mod:`receiver.incidents` drives.
Keys, not memory, make it exactly-once across replicas: an alert state is one row per (fingerprint, status,
startsAt), taken under a lock on the fingerprint; one live incident per (runbook, key), looked up under a
lock on the key, so two replicas applying duplicates wait for each other instead of both opening one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from receiver.errors import NotFound
from receiver.store.base import IncidentRecord
from receiver.store.incidents import _append, _incident, _set_state
from receiver.store.sql import Tx

__all__ = ["Writer"]


class Writer:
    """:class:`~receiver.store.base.IncidentWriter` over one open transaction."""

    def __init__(self, tx: Tx, notification_id: int, now: str) -> None:
        self.tx, self.notification_id, self.now = tx, notification_id, now

    def alert_state_seen(self, fingerprint: str, status: str, starts_at: str | None) -> bool:
        self.tx.lock(f"alert:{fingerprint}")
        row = self.tx.execute(
            "SELECT 1 FROM alert_history WHERE fingerprint = ? AND status = ? AND starts_at = ?",
            (fingerprint, status, starts_at or ""),
        ).fetchone()
        return row is not None

    def record_alert(
        self,
        *,
        fingerprint: str,
        alertname: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        status: str,
        starts_at: str | None,
        ends_at: str | None,
        generator_url: str,
    ) -> None:
        self.tx.execute(
            """INSERT INTO alerts (fingerprint, alertname, labels, annotations, status, starts_at, ends_at,
                                   generator_url, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (fingerprint) DO UPDATE SET alertname = excluded.alertname,
                   labels = excluded.labels, annotations = excluded.annotations, status = excluded.status,
                   starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                   generator_url = excluded.generator_url, updated_at = excluded.updated_at""",
            (
                fingerprint,
                alertname,
                json.dumps(dict(labels), sort_keys=True),
                json.dumps(dict(annotations), sort_keys=True),
                status,
                starts_at,
                ends_at,
                generator_url,
                self.now,
            ),
        )
        self.tx.execute(
            """INSERT INTO alert_history
                   (fingerprint, status, starts_at, ends_at, notification_id, recorded_at)
               VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (fingerprint, status, starts_at or "", ends_at, self.notification_id, self.now),
        )

    def find_live_incident(self, runbook_id: str, incident_key: str) -> IncidentRecord | None:
        self.tx.lock(f"incident:{runbook_id}:{incident_key}")
        row = self.tx.execute(
            "SELECT * FROM incidents WHERE runbook_id = ? AND incident_key = ?"
            " AND state IN ('open', 'contained')",
            (runbook_id, incident_key),
        ).fetchone()
        return _incident(row) if row else None

    def live_incident_for_alert(self, fingerprint: str) -> IncidentRecord | None:
        row = self.tx.execute(
            """SELECT i.* FROM incidents i JOIN incident_alerts a ON a.incident_id = i.id
               WHERE a.fingerprint = ? AND i.state IN ('open', 'contained') ORDER BY i.id DESC LIMIT 1""",
            (fingerprint,),
        ).fetchone()
        return _incident(row) if row else None

    def create_incident(
        self,
        *,
        runbook_id: str,
        incident_key: str,
        title: str,
        model: str | None,
        group_labels: Mapping[str, str],
        severity: str,
    ) -> IncidentRecord:
        row = self.tx.execute(
            """INSERT INTO incidents (runbook_id, incident_key, title, model, group_labels, state, severity,
                                      opened_at, updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)
               RETURNING *""",
            (
                runbook_id,
                incident_key,
                title,
                model,
                json.dumps(dict(group_labels), sort_keys=True),
                severity,
                self.now,
                self.now,
            ),
        ).fetchone()
        return _incident(row)

    def upsert_incident_alert(
        self, incident_id: int, fingerprint: str, status: str, starts_at: str | None, ends_at: str | None
    ) -> None:
        self.tx.execute(
            """INSERT INTO incident_alerts (incident_id, fingerprint, status, starts_at, ends_at, joined_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status,
                   starts_at = excluded.starts_at, ends_at = excluded.ends_at""",
            (incident_id, fingerprint, status, starts_at, ends_at, self.now),
        )

    def incident_alert_counts(self, incident_id: int) -> tuple[int, int]:
        row = self.tx.execute(
            "SELECT COALESCE(SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END), 0), COUNT(*)"
            " FROM incident_alerts WHERE incident_id = ?",
            (incident_id,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def set_severity(self, incident_id: int, severity: str) -> None:
        self.tx.execute(
            "UPDATE incidents SET severity = ?, updated_at = ? WHERE id = ?",
            (severity, self.now, incident_id),
        )

    def set_state(self, incident_id: int, state: str) -> None:
        row = self.tx.execute(
            f"SELECT state FROM incidents WHERE id = ?{self.tx.locking}", (incident_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        _set_state(self.tx, incident_id, row["state"], state, self.now)

    def add_timeline(
        self,
        incident_id: int,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        return _append(self.tx, incident_id, self.now, kind, message, data, dedupe_key, self.notification_id)
