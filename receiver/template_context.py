"""The one namespace that runbook templates and PromQL see for an incident.

Steps' ``when`` and parameters, evidence and verify queries, and the console's charts of those queries all
render over this, so a runbook expression means the same wherever it runs: ``labels`` and
``annotations`` of the alert that speaks for the incident (untrusted data), its ``value``, the incident's
``level``, how many of its alerts fire, and the incident's id and key.
"""

from __future__ import annotations

from typing import Any

from receiver.runbooks import parse_value
from receiver.status import primary_alert
from receiver.store.base import IncidentDetail

__all__ = ["template_context"]


def template_context(detail: IncidentDetail, fingerprint: str | None = None) -> dict[str, Any]:
    """The namespace for ``detail``, speaking through the alert ``fingerprint`` when given."""
    alert = primary_alert(detail, fingerprint)
    labels = dict(alert.labels) if alert else dict(detail.incident.group_labels)
    annotations = dict(alert.annotations) if alert else {}
    return {
        "labels": labels,
        "annotations": annotations,
        "value": parse_value(annotations),
        "level": detail.incident.severity,
        "firing_count": sum(1 for a in detail.alerts if a.status == "firing"),
        "incident": {"id": detail.incident.id, "key": detail.incident.incident_key},
    }
