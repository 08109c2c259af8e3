"""Read a running drill stack over HTTP: Prometheus's and Alertmanager's alerts, the receiver's incidents.

Split from :mod:`receiver.drill.run` so the endpoints, their auth and their error handling live in one
place, shared by the run (warm-up, collecting the record) and the observer judging each poll
(:mod:`receiver.drill.observe`). Apart from :meth:`StackProbe.query`, every read answers empty when the
request or the decoding fails: a poll that could not read is simply repeated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests

from receiver.drill.stack import Stack

__all__ = ["StackProbe", "epoch"]


def epoch(text: str | None) -> float | None:
    """An ISO-8601 timestamp from the APIs (``Z`` or an offset) as epoch seconds; None when absent or bad."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class StackProbe:
    """The reads a drill run makes of ``stack``, all on one HTTP ``session`` (which the caller closes)."""

    def __init__(self, stack: Stack, session: requests.Session) -> None:
        self.stack = stack
        self.session = session

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result; raises on a transport error or an error status."""
        resp = self.session.get(
            self.stack.prometheus_url + "/api/v1/query", params={"query": promql}, timeout=5
        )
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()["data"]["result"]
        return result

    def firing_alerts(self) -> list[dict[str, Any]]:
        """Prometheus's pending and firing alerts."""
        try:
            resp = self.session.get(self.stack.prometheus_url + "/api/v1/alerts", timeout=3)
            alerts: list[dict[str, Any]] = resp.json()["data"]["alerts"]
            return alerts
        except (requests.RequestException, KeyError, ValueError):
            return []

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        try:
            resp = self.session.get(self.stack.alertmanager_url + "/api/v2/alerts", timeout=3)
            alerts: list[dict[str, Any]] = resp.json()
            return alerts
        except (requests.RequestException, ValueError):
            return []

    def incidents_since(self, model: str, fault_at: float | None) -> list[dict[str, Any]]:
        """Every incident of ``model`` opened since ``fault_at`` (less a second), oldest first."""
        try:
            resp = self.session.get(
                self.stack.receiver_url + "/api/v1/incidents",
                params={"model": model, "limit": "50"},
                headers=self.stack.admin_headers(),
                timeout=3,
            )
            incidents: list[dict[str, Any]] = resp.json()["incidents"]
        except (requests.RequestException, KeyError, ValueError):
            return []
        since = (fault_at or 0.0) - 1.0
        return sorted(
            (i for i in incidents if (epoch(i.get("opened_at")) or 0.0) >= since), key=lambda i: i["id"]
        )

    def incident_detail(self, incident_id: int) -> dict[str, Any] | None:
        try:
            resp = self.session.get(
                f"{self.stack.receiver_url}/api/v1/incidents/{incident_id}",
                headers=self.stack.admin_headers(),
                timeout=3,
            )
            detail: dict[str, Any] = resp.json()
            return detail if resp.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def registry_snapshot(self, model: str) -> dict[str, Any]:
        """The registry's state of ``model`` (versions, active version, traffic split, mode, guardrail)."""
        state: dict[str, Any] = self.stack.registry().state(model).to_dict()
        return state
