"""What the alert storm left in the database, and how long a killed replica's claims waited.

Everything here is counted from the receivers' store (SQLite or PostgreSQL) and the chat/pager sink, never
from a process's memory: lost means an alert, incident, action or message that should exist and does not;
duplicate means two rows (or two posts) for what must exist once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from bench.databases import count

__all__ = ["ClaimWatch", "drained", "storm_counts"]


def storm_counts(store: Any, sink_messages: list[Any]) -> dict[str, Any]:
    """Alerts, incidents, actions and messages, each with its duplicates and what is still unfinished."""
    c = {
        "alerts_recorded": count(store, "SELECT COUNT(*) FROM alerts WHERE labels LIKE ?", ("%storm-%",)),
        "incidents": count(store, "SELECT COUNT(*) FROM incidents"),
        "incident_duplicates": count(
            store,
            "SELECT COUNT(*) FROM (SELECT runbook_id, incident_key FROM incidents"
            " GROUP BY runbook_id, incident_key HAVING COUNT(*) > 1) d",
        ),
        "notifications": count(store, "SELECT COUNT(*) FROM notifications"),
        "notifications_pending": store.pending_count(),
        "notifications_failed": count(store, "SELECT COUNT(*) FROM notifications WHERE state = 'failed'"),
        "actions": count(store, "SELECT COUNT(*) FROM action_ledger"),
        "action_duplicates": count(
            store,
            "SELECT COUNT(*) FROM (SELECT incident_id FROM action_ledger"
            " GROUP BY incident_id, phase, step_id, kind HAVING COUNT(*) > 1) d",
        ),
        "actions_unfinished": count(
            store, "SELECT COUNT(*) FROM action_ledger WHERE state IN ('claimed', 'running')"
        ),
        "actions_interrupted": count(store, "SELECT COUNT(*) FROM action_ledger WHERE state = 'interrupted'"),
        "messages_queued": count(store, "SELECT COUNT(*) FROM outbox"),
        "messages_pending": count(store, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        "messages_failed": count(store, "SELECT COUNT(*) FROM outbox WHERE status = 'failed'"),
        "incidents_without_message": count(
            store,
            "SELECT COUNT(*) FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM outbox o"
            " WHERE o.incident_id = CAST(i.id AS TEXT))",
        ),
    }
    posts = Counter((m.path, json.dumps(m.body, sort_keys=True)) for m in sink_messages)
    c["chat_and_pager_posts"] = sum(posts.values())
    c["posts_duplicate"] = sum(n - 1 for n in posts.values() if n > 1)
    when: dict[tuple[str, str], list[float]] = {}
    for m in sink_messages:
        when.setdefault((m.path, json.dumps(m.body, sort_keys=True)), []).append(m.at)
    c["posts_duplicated"] = [
        f"{n}x at {', '.join(f'{t:.2f}' for t in when[path, body])} {path} {body[:120]}"
        for (path, body), n in posts.items()
        if n > 1
    ][:5]
    return c


def drained(store: Any, expected_alerts: int, expected_incidents: int) -> bool:
    """Everything the storm asks for exists and nothing is left to do right now."""
    c = count
    return (
        c(store, "SELECT COUNT(*) FROM alerts WHERE labels LIKE ?", ("%storm-%",)) >= expected_alerts
        and c(store, "SELECT COUNT(*) FROM incidents") >= expected_incidents
        and store.pending_count() == 0
        and c(store, "SELECT COUNT(*) FROM action_ledger WHERE state IN ('claimed', 'running')") == 0
        and c(store, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == 0
    )


class ClaimWatch:
    """The claims held when a replica was killed, and when each was finished by someone else.

    Notification responses, outbox deliveries and timers carry a lease but no owner: every leased row at the
    kill is watched (the survivor's own finish at once; the dead one's wait for the lease to lapse). Action
    steps name their owner (``replica-pid``), so those are the dead replica's exactly.
    """

    _QUERIES = {
        "response": (
            "SELECT id FROM notifications WHERE state = 'applied' AND lease_until_ts > ?",
            "SELECT COUNT(*) FROM notifications WHERE id = ? AND state <> 'applied'",
        ),
        "message": (
            "SELECT id FROM outbox WHERE status = 'pending' AND lease_until > ?",
            "SELECT COUNT(*) FROM outbox WHERE id = ? AND status <> 'pending'",
        ),
        "timer": (
            "SELECT id FROM timers WHERE state = 'pending' AND lease_until_ts > ?",
            "SELECT COUNT(*) FROM timers WHERE id = ? AND (state <> 'pending' OR lease_until_ts <= ?)",
        ),
    }

    def __init__(self, store: Any, killed_at: float, dead_owner_prefix: str) -> None:
        self.store, self.killed_at = store, killed_at
        self.waiting: dict[tuple[str, int], float | None] = {}
        with store.db.read() as tx:
            for kind, (select, _) in self._QUERIES.items():
                for row in tx.execute(select, (killed_at,)).fetchall():
                    self.waiting[kind, int(row[0])] = None
            rows = tx.execute(
                "SELECT id FROM action_ledger WHERE state IN ('claimed', 'running') AND owner LIKE ?",
                (dead_owner_prefix + "%",),
            ).fetchall()
            for row in rows:
                self.waiting["action", int(row[0])] = None

    def poll(self) -> bool:
        """Note which claims are finished now; True when all are."""
        now = time.time()
        with self.store.db.read() as tx:
            for (kind, row_id), finished in self.waiting.items():
                if finished is not None:
                    continue
                if kind == "action":
                    sql = (
                        "SELECT COUNT(*) FROM action_ledger WHERE id = ?"
                        " AND state NOT IN ('claimed', 'running')"
                    )
                    params: tuple[Any, ...] = (row_id,)
                else:
                    sql = self._QUERIES[kind][1]
                    params = (row_id, self.killed_at) if kind == "timer" else (row_id,)
                if int(tx.execute(sql, params).fetchone()[0]):
                    self.waiting[kind, row_id] = now
        return all(v is not None for v in self.waiting.values())

    def summary(self) -> dict[str, Any]:
        waits = {k: (v - self.killed_at if v is not None else None) for k, v in self.waiting.items()}
        by_kind: dict[str, list[float | None]] = {}
        for (kind, _), wait in waits.items():
            by_kind.setdefault(kind, []).append(wait)
        return {
            kind: {
                "claims": len(values),
                "unfinished": sum(v is None for v in values),
                "max_wait_s": round(max((v for v in values if v is not None), default=0.0), 2),
            }
            for kind, values in sorted(by_kind.items())
        }
