"""The typed v4 notification (frozen dataclasses) and the field vocabulary both payload checks share.

A module of its own so the full parser (:mod:`receiver.payload`) and the request path's quick check
(:mod:`receiver.payload_quick`) read one definition of the fields, statuses and fingerprint shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ALERT_KEYS", "FINGERPRINT", "NOTIFICATION_KEYS", "STATUSES", "Alert", "Notification"]

FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
#: The fields of a v4 notification and of each alert; others are kept (never read) if not too deep.
NOTIFICATION_KEYS = frozenset(
    (
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    )
)
ALERT_KEYS = frozenset(
    ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint")
)
STATUSES = ("firing", "resolved")


@dataclass(frozen=True, slots=True)
class Alert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str
    fingerprint: str

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True, slots=True)
class Notification:
    version: str
    group_key: str
    truncated_alerts: int
    status: str
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
