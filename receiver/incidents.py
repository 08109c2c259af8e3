"""Incident lifecycle: turn one parsed notification into incident changes, idempotently.

Each alert state is identified by ``(fingerprint, status, startsAt)``. A state already recorded changes
nothing, so a repeat notification, an Alertmanager retry or an HA duplicate adds neither incidents nor
timeline entries. Timeline entries carry a dedupe key for the same reason.

* firing → the live incident of (runbook, incident key) or a new one; severity is decided on open and
  re-evaluated as alerts join (only ever raised, each change on the timeline with its reason);
* resolved → recorded on the incident holding the alert; when none of its alerts still fires, the incident
  becomes ``resolved``. A later firing of the same key opens a new incident.

Labels and annotations are data: they are stored and compared literally, never rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from receiver.payload import Alert, Notification, format_time
from receiver.runbooks.model import Runbook, RunbookSet
from receiver.runbooks.severity import SeverityContext, SeverityDecision, more_severe
from receiver.store.base import IncidentRecord, IncidentWriter

__all__ = ["EVENT_KINDS", "IncidentEvent", "apply_notification"]

#: Event kinds handed to the responder.
EVENT_KINDS = ("opened", "joined", "severity_raised", "resolved")


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """Something that happened to an incident while applying one notification."""

    kind: str
    incident_id: int
    runbook_id: str
    incident_key: str
    severity: str
    notification_id: int
    fingerprint: str | None = None
    previous_severity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # every field is a str, int or None: no deep copy needed (dataclasses.asdict costs ~10x this)
        return {name: getattr(self, name) for name in _EVENT_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IncidentEvent:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


_EVENT_FIELDS = tuple(IncidentEvent.__dataclass_fields__)


def _record_decision(writer: IncidentWriter, incident_id: int, decision: SeverityDecision) -> None:
    for error in decision.errors:
        writer.add_timeline(
            incident_id,
            "severity_expression_error",
            str(error),
            {"row": error.row, "expression": error.expression, "error": error.message},
            dedupe_key=f"severity-error:{error.row}:{error.message}",
        )


def _title(runbook: Runbook, group_labels: Mapping[str, str]) -> str:
    scope = ", ".join(f"{k}={v}" for k, v in group_labels.items() if v)
    return f"{runbook.title} ({scope})" if scope else runbook.title


class _Applier:
    def __init__(self, writer: IncidentWriter, notification: Notification, runbooks: RunbookSet) -> None:
        self.writer, self.notification, self.runbooks = writer, notification, runbooks
        self.events: list[IncidentEvent] = []
        self.touched: dict[int, IncidentRecord] = {}

    def event(
        self,
        kind: str,
        incident: IncidentRecord,
        severity: str,
        fingerprint: str | None = None,
        previous: str | None = None,
    ) -> None:
        self.events.append(
            IncidentEvent(
                kind,
                incident.id,
                incident.runbook_id,
                incident.incident_key,
                severity,
                self.writer.notification_id,
                fingerprint,
                previous,
            )
        )

    def run(self) -> list[IncidentEvent]:
        for alert in self.notification.alerts:
            self.apply_alert(alert)
        if self.notification.truncated_alerts > 0:
            self.record_truncation()
        return self.events

    def apply_alert(self, alert: Alert) -> None:
        w, fp = self.writer, alert.fingerprint
        starts, ends = format_time(alert.starts_at), format_time(alert.ends_at)
        runbook = self.runbooks.match(alert.labels)
        key = runbook.incident_key(alert.labels)
        seen = w.alert_state_seen(fp, alert.status, starts)
        # a repeat (the common case under Alertmanager's resends) is answered by the first lookup
        stale = not seen and alert.status == "firing" and w.alert_state_seen(fp, "resolved", starts)
        if seen or stale:
            # nothing new; remember the incident for a truncation note
            live = w.live_incident_for_alert(fp) or w.find_live_incident(runbook.id, key)
            if live is not None:
                self.touched.setdefault(live.id, live)
            return
        w.record_alert(
            fingerprint=fp,
            alertname=alert.alertname,
            labels=alert.labels,
            annotations=alert.annotations,
            status=alert.status,
            starts_at=starts,
            ends_at=ends,
            generator_url=alert.generator_url,
        )
        if alert.status == "firing":
            self.fire(alert, runbook, key, starts, ends)
        else:
            self.resolve(alert, starts, ends)

    def fire(self, alert: Alert, runbook: Runbook, key: str, starts: str | None, ends: str | None) -> None:
        w, fp = self.writer, alert.fingerprint
        incident = w.find_live_incident(runbook.id, key)
        opened = incident is None
        if incident is None:
            decision = runbook.decide_severity_with_trace(
                SeverityContext.from_alert(alert.labels, alert.annotations)
            )
            group_labels = {name: alert.labels.get(name, "") for name in runbook.group_by}
            incident = w.create_incident(
                runbook_id=runbook.id,
                incident_key=key,
                title=_title(runbook, group_labels),
                model=alert.labels.get("model"),
                group_labels=group_labels,
                severity=decision.level,
            )
            w.add_timeline(
                incident.id,
                "opened",
                f"Opened by {alert.alertname or fp} under runbook {runbook.id}",
                {"fingerprint": fp, "runbook_id": runbook.id, "incident_key": key},
                dedupe_key="opened",
            )
            w.add_timeline(
                incident.id,
                "severity",
                f"Severity {decision.level}: {self._reason(decision, runbook)}",
                {"level": decision.level, "row": decision.row, "firing_count": 1},
                dedupe_key=f"severity:{decision.level}",
            )
            _record_decision(w, incident.id, decision)
            self.event("opened", incident, decision.level, fp)
        w.upsert_incident_alert(incident.id, fp, "firing", starts, ends)
        w.add_timeline(
            incident.id,
            "alert_firing",
            f"{alert.alertname or fp} firing since {starts}",
            {"fingerprint": fp, "starts_at": starts, "labels": dict(alert.labels)},
            dedupe_key=f"alert:{fp}:firing:{starts}",
        )
        if not opened:
            self.event("joined", incident, incident.severity, fp)
            incident = self.reevaluate(incident, alert, runbook)
        self.touched[incident.id] = incident

    def reevaluate(self, incident: IncidentRecord, alert: Alert, runbook: Runbook) -> IncidentRecord:
        w = self.writer
        firing, _total = w.incident_alert_counts(incident.id)
        decision = runbook.decide_severity_with_trace(
            SeverityContext.from_alert(alert.labels, alert.annotations, firing_count=firing)
        )
        _record_decision(w, incident.id, decision)
        raised = more_severe(decision.level, incident.severity)
        if raised == incident.severity:
            return incident  # never lowered
        w.set_severity(incident.id, raised)
        w.add_timeline(
            incident.id,
            "severity",
            f"Severity raised from {incident.severity} to {raised}: {alert.alertname or alert.fingerprint}"
            f" joined ({firing} firing), {self._reason(decision, runbook)}",
            {
                "level": raised,
                "previous": incident.severity,
                "row": decision.row,
                "firing_count": firing,
                "fingerprint": alert.fingerprint,
            },
            dedupe_key=f"severity:{raised}",
        )
        self.event("severity_raised", incident, raised, alert.fingerprint, incident.severity)
        return _with(incident, severity=raised)

    @staticmethod
    def _reason(decision: SeverityDecision, runbook: Runbook) -> str:
        """Why this level, in the runbook's own words (the row's ``when`` expression)."""
        if decision.row is None:
            return "default level (no row matched)"
        row = runbook.severity[decision.row] if decision.row < len(runbook.severity) else None
        if row is None or row.when is None:
            return f"severity row {decision.row} (unconditional)"
        return f"severity row {decision.row} matched: {row.when}"

    def resolve(self, alert: Alert, starts: str | None, ends: str | None) -> None:
        w, fp = self.writer, alert.fingerprint
        incident = w.live_incident_for_alert(fp)
        if incident is None:
            return  # recorded in the alert history; no live incident holds it
        w.upsert_incident_alert(incident.id, fp, "resolved", starts, ends)
        w.add_timeline(
            incident.id,
            "alert_resolved",
            f"{alert.alertname or fp} resolved at {ends}",
            {"fingerprint": fp, "starts_at": starts, "ends_at": ends},
            dedupe_key=f"alert:{fp}:resolved:{starts}",
        )
        firing, total = w.incident_alert_counts(incident.id)
        if firing == 0:
            w.set_state(incident.id, "resolved")
            w.add_timeline(
                incident.id,
                "resolved",
                f"Resolved: all {total} alert(s) resolved",
                {"alerts": total},
                dedupe_key="resolved",
            )
            self.event("resolved", incident, incident.severity, fp)
        self.touched[incident.id] = incident

    def record_truncation(self) -> None:
        n, group_key = self.notification.truncated_alerts, self.notification.group_key
        for incident_id in self.touched:
            self.writer.add_timeline(
                incident_id,
                "notification_truncated",
                f"Alertmanager truncated this notification: {n} alert(s) of the group were not sent",
                {"truncated_alerts": n, "group_key": group_key},
                dedupe_key=f"truncated:{group_key}:{n}",
            )


def _with(incident: IncidentRecord, **changes: Any) -> IncidentRecord:
    return replace(incident, **changes)


def apply_notification(
    writer: IncidentWriter, notification: Notification, runbooks: RunbookSet
) -> list[IncidentEvent]:
    """Apply ``notification`` through ``writer`` (inside the store's transaction); return its events."""
    return _Applier(writer, notification, runbooks).run()
