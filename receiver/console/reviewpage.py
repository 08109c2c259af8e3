"""The review with pictures: the facts the data answers, a chart per key query, and the Markdown draft.

The rules' ``for:`` comes from Prometheus's rules API (``/api/v1/rules?type=alert``); when Prometheus cannot
be asked, the facts say the ``for:`` is unknown rather than guess.
"""

from __future__ import annotations

from typing import Any

import requests

from receiver.console.incident_data import IncidentData
from receiver.review import ReviewChart, render_review, review_facts

__all__ = ["review_context", "rule_durations"]


def rule_durations(session: requests.Session, prometheus_url: str, timeout: float = 3.0) -> dict[str, float]:
    """Alert name → the rule's ``for:`` in seconds, for every alerting rule Prometheus has loaded."""
    try:
        response = session.get(
            prometheus_url.rstrip("/") + "/api/v1/rules", params={"type": "alert"}, timeout=timeout
        )
        body = response.json()
    except (requests.RequestException, ValueError):
        return {}
    found: dict[str, float] = {}
    groups = (body.get("data") or {}).get("groups") if isinstance(body, dict) else None
    for group in groups or []:
        for rule in group.get("rules") or []:
            if rule.get("type") == "alerting" and isinstance(rule.get("duration"), (int, float)):
                found.setdefault(str(rule.get("name")), float(rule["duration"]))
    return found


def review_context(data: IncidentData, session: requests.Session, prometheus_url: str) -> dict[str, Any]:
    facts = review_facts(
        data.detail,
        data.runbook.document if data.runbook is not None else None,
        rule_for=rule_durations(session, prometheus_url),
        approvals=data.approvals,
    )
    charts = [ReviewChart(c.title, c.query, c.svg) for c in data.charts]
    return {"facts": facts, "markdown": render_review(data.detail, facts=facts, charts=charts)}
