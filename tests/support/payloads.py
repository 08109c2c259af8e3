"""Builders of Alertmanager v4 webhook payloads and a small runbook set for receiver tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["DRIFT_RUNBOOK", "alert", "fingerprint", "notification", "write_runbooks"]

ZERO_TIME = "0001-01-01T00:00:00Z"

DRIFT_RUNBOOK = """\
id: feature-drift
title: Feature drift
match: ['incident_type="drift"']
group_by: [model]
severity:
  - {when: 'value is not none and value >= 0.35', level: SEV1}
  - {when: 'firing_count >= 3', level: SEV1}
  - {when: 'value is not none and value >= 0.2', level: SEV2}
  - {level: SEV3}
"""

LATENCY_RUNBOOK = """\
id: latency
title: Latency
match: ['incident_type="latency"']
group_by: [model]
severity:
  - {when: 'labels.tier == "critical"', level: SEV1}
  - {when: 'value > 1', level: SEV2}
  - {level: SEV3}
"""


def write_runbooks(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "drift.yml").write_text(DRIFT_RUNBOOK)
    (directory / "latency.yml").write_text(LATENCY_RUNBOOK)
    return directory


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def alert(
    status: str = "firing",
    *,
    starts_at: str = "2024-05-01T10:00:00.123456789Z",
    ends_at: str = ZERO_TIME,
    value: str | None = "0.25",
    **labels: str,
) -> dict[str, Any]:
    labels = {"alertname": "FeatureDrift", "incident_type": "drift", "model": "churn", **labels}
    annotations = {"summary": "drift", **({"value": value} if value is not None else {})}
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint(labels),
    }


def notification(
    *alerts: Any, truncated: Any = 0, group_key: str = '{}:{model="churn"}', **extra: Any
) -> dict[str, Any]:
    alerts_list = list(alerts) or [alert()]
    status = "firing" if any(a["status"] == "firing" for a in alerts_list) else "resolved"
    body = {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": truncated,
        "status": status,
        "receiver": "receiver",
        "groupLabels": {"model": "churn"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts_list,
    }
    body.update(extra)
    return body
