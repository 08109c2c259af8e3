"""Build a :class:`~receiver.comms.message.StatusUpdate` from what the receiver knows about an incident.

The facts come from the store (incident, alerts, timeline), the action ledger (what was done and how it
went), the latest evidence snapshot on the timeline, and the model registry (active / last known good).
Every source is optional: a registry that cannot be read leaves the versions unknown, never fails the update.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from receiver.comms.message import ActionSummary, Links, ModelVersions, StatusUpdate
from receiver.evidence import EvidenceSnapshot
from receiver.runbooks import Runbook
from receiver.store.base import AlertRecord, IncidentDetail
from receiver.templating import render

__all__ = ["StatusBuilder", "primary_alert"]

log = logging.getLogger("receiver.status")


def primary_alert(detail: IncidentDetail, fingerprint: str | None = None) -> AlertRecord | None:
    """The alert that speaks for the incident: the given one, else the first firing, else the first."""
    if fingerprint:
        for alert in detail.alerts:
            if alert.fingerprint == fingerprint:
                return alert
    firing = [a for a in detail.alerts if a.status == "firing"]
    candidates = firing or list(detail.alerts)
    return candidates[0] if candidates else None


_FINAL_EVENTS = ("succeeded", "failed", "refused", "skipped", "dry_run", "interrupted", "unknown")


class StatusBuilder:
    def __init__(
        self,
        *,
        registry_state: Callable[[str], Any] | None = None,
        public_url: str | None = None,
    ) -> None:
        self.registry_state = registry_state
        self.public_url = public_url.rstrip("/") if public_url else None

    def build(
        self,
        detail: IncidentDetail,
        runbook: Runbook,
        event: str,
        *,
        sequence: int = 0,
        summary: str = "",
        next_update_at: datetime | None = None,
        fingerprint: str | None = None,
    ) -> StatusUpdate:
        incident = detail.incident
        alert = primary_alert(detail, fingerprint)
        labels = dict(alert.labels) if alert else dict(incident.group_labels)
        annotations = dict(alert.annotations) if alert else {}
        owners, _errors = runbook.render_owners(labels)
        if runbook.escalate is not None:
            owners.setdefault("escalation", runbook.escalate.to)
        return StatusUpdate(
            incident_id=str(incident.id),
            event=event,
            severity=incident.severity,
            state=incident.state,
            title=incident.title or runbook.title,
            model=self._versions(incident.model or labels.get("model", "")),
            impact=self._render_text(runbook.impact, labels, annotations),
            summary=summary or annotations.get("summary", ""),
            actions=self._actions(detail),
            evidence=self._evidence(detail),
            owners=owners,
            next_update_at=next_update_at,
            links=self._links(runbook, labels, annotations, alert, incident.id),
            labels=labels,
            annotations=annotations,
            sequence=sequence,
            created_at=datetime.now(UTC),
        )

    def _render_text(self, template: Any, labels: dict[str, str], annotations: dict[str, str]) -> str:
        if not isinstance(template, str) or not template:
            return ""
        try:
            return render(template, {"labels": labels, "annotations": annotations}).strip()
        except Exception as exc:
            return f"{template.strip()} [template error: {exc}]"

    def _versions(self, model: str) -> ModelVersions:
        if not model or self.registry_state is None:
            return ModelVersions(name=model or "unknown")
        try:
            state = self.registry_state(model)
        except Exception as exc:
            log.warning("registry state for %s unavailable: %s", model, exc)
            return ModelVersions(name=model)
        changed = None
        traffic = getattr(state, "traffic", None) or {}
        if len([v for v, w in traffic.items() if w > 0]) > 1:
            changed = "traffic split " + ", ".join(f"{v} {w:g}%" for v, w in sorted(traffic.items()) if w > 0)
        if getattr(state, "mode", "normal") != "normal":
            changed = ", ".join(filter(None, [changed, f"serving mode {state.mode}"]))
        return ModelVersions(
            name=model,
            active=getattr(state, "active_version", None),
            last_known_good=getattr(state, "last_known_good", None),
            changed=changed,
        )

    @staticmethod
    def _actions(detail: IncidentDetail) -> tuple[ActionSummary, ...]:
        """Every finished action step on the timeline, in order (the ledger's outcome, as recorded)."""
        summaries = []
        for entry in detail.timeline:
            data = entry.data
            if entry.kind != "action" or data.get("event") not in _FINAL_EVENTS:
                continue
            phase = data.get("phase", "contain")
            status = str(data["event"]) if phase == "contain" else f"{phase}: {data['event']}"
            detail_text = str(data.get("summary") or data.get("error") or "")
            summaries.append(
                ActionSummary(
                    kind=str(data.get("action", "?")), status=status, detail=detail_text, at=entry.at
                )
            )
        return tuple(summaries)

    @staticmethod
    def _evidence(detail: IncidentDetail) -> tuple[EvidenceSnapshot, ...]:
        for entry in reversed(detail.timeline):
            if entry.kind == "evidence" and isinstance(entry.data.get("snapshots"), list):
                return tuple(EvidenceSnapshot.from_json(s) for s in entry.data["snapshots"])
        return ()

    def _links(
        self,
        runbook: Runbook,
        labels: dict[str, str],
        annotations: dict[str, str],
        alert: AlertRecord | None,
        incident_id: int,
    ) -> Links:
        links = runbook.links
        dashboard = annotations.get("dashboard_url") or self._render_text(
            links.get("dashboard_url"), labels, annotations
        )
        runbook_url = annotations.get("runbook_url") or self._render_text(
            links.get("runbook_url"), labels, annotations
        )
        # the console's page of the incident
        incident_url = f"{self.public_url}/incidents/{incident_id}" if self.public_url else None
        return Links(
            dashboard=dashboard or None,
            generator=(alert.generator_url if alert else None) or None,
            runbook=runbook_url or None,
            incident=incident_url,
        )
