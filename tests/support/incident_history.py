"""Incidents with a full history, written through the store's own protocols at a chosen (past) time.

Used by the retention tests: a notification applied through ``apply`` (alerts, history, incident,
timeline), a contained step in the ledger, a delivered and a dead-lettered message in the outbox, timers,
evidence and the lifecycle moves up to ``closed``, all stamped by the store's clock so the incident can be
made 100 days old.
"""

from __future__ import annotations

import json
from typing import Any

from receiver.store import SqlStore
from receiver.store.base import LedgerKey

__all__ = ["FakeClock", "make_incident", "notification_body"]

DAY = 86400.0


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def notification_body(model: str, status: str = "firing", starts_at: str = "2027-01-15T10:00:00Z") -> bytes:
    alert = {
        "status": status,
        "labels": {"alertname": "ModelFeatureDriftHigh", "model": model, "incident_type": "drift"},
        "annotations": {"summary": f"PSI high on {model}", "value": "0.31", "threshold": "0.2"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"fp-{model}",
    }
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{model="{model}"}}',
        "status": status,
        "receiver": "ml",
        "groupLabels": {"model": model},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }
    return json.dumps(body).encode()


def make_incident(store: SqlStore, clock: FakeClock, model: str, *, close: bool = True) -> int:
    """One incident on ``model`` through its lifecycle at ``clock``'s time; returns its id."""
    body = notification_body(model)
    nid = store.record_notification(body, f"group-{model}")

    def apply(writer: Any) -> list[dict[str, Any]]:
        writer.record_alert(
            fingerprint=f"fp-{model}",
            alertname="ModelFeatureDriftHigh",
            labels={"model": model, "incident_type": "drift"},
            annotations={"summary": f"PSI high on {model}"},
            status="firing",
            starts_at="2027-01-15T10:00:00Z",
            ends_at=None,
            generator_url="http://prometheus:9090/graph",
        )
        incident = writer.create_incident(
            runbook_id="feature-drift",
            incident_key=model,
            title=f"Feature drift on {model}",
            model=model,
            group_labels={"model": model},
            severity="SEV2",
        )
        writer.upsert_incident_alert(incident.id, f"fp-{model}", "firing", "2027-01-15T10:00:00Z", None)
        writer.add_timeline(incident.id, "opened", "incident opened", {"severity": "SEV2"}, "opened")
        return [{"kind": "opened", "incident_id": incident.id}]

    events = store.apply(nid, apply)
    assert events is not None
    incident_id = int(events[0]["incident_id"])
    claimed = store.claim_applied()
    assert claimed is not None and claimed.id == nid
    store.mark_done(nid)

    now = clock()
    store.add_timeline(
        incident_id,
        "evidence",
        "evidence captured",
        {"moment": "opened", "snapshots": [{"name": "max PSI", "query": "max(psi)", "value": "0.31"}]},
    )
    claim = store.ledger.claim(
        LedgerKey(str(incident_id), "contain", "split-0", "traffic_split"),
        model=model,
        runbook_id="feature-drift",
        params={"weight": 50},
        owner="test",
        now=now,
        lease_until=now + 15,
        containment=True,
        automatic=True,
        dry_run=False,
        guard=None,
    )
    assert claim.row is not None
    store.ledger.finish(claim.row.id, "succeeded", now=now + 1, result={"traffic": {"v2": 50, "v1": 50}})
    store.add_timeline(
        incident_id,
        "action",
        "traffic_split succeeded",
        {"phase": "contain", "action": "traffic_split", "step_id": "split-0", "event": "succeeded"},
    )
    for n, channel in enumerate(("chat", "pager")):
        store.outbox.enqueue(
            str(incident_id), channel, json.dumps({"text": "x" * 400}), f"{incident_id}:{n}", now
        )
    for message in store.outbox.select(incident_id=str(incident_id)):
        store.outbox.mark_delivered(message.id, 200, now + 2)
    store.add_timeline(incident_id, "message", "notify queued for chat: Investigating", {"channel": "chat"})
    store.timers.schedule(incident_id, "verify", now + 60, {"state": {}})
    store.timers.schedule(incident_id, "update", now + 1800, {})
    store.transition(incident_id, "contained", "PSI back under 0.2")
    if close:
        store.transition(incident_id, "resolved", "alerts resolved")
        store.transition(incident_id, "closed", "closed by alice", {"actor": "alice"})
    return incident_id
