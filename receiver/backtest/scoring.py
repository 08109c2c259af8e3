"""Score backtest firings against labelled incidents: precision, recall and detection delay.

Definitions (what an on-call engineer cares about):

* a *firing interval* is one episode of an alert label set from ``fired_at`` to ``resolved_at`` (or the end
  of the range); it *matches* an incident when its ``model`` and ``incident_type`` labels equal the
  incident's (and its ``alertname`` too, if the incident names one) and it overlaps
  ``[incident.start, incident.end + grace]``;
* **precision** = matching firing intervals / all firing intervals (each interval is a page or ticket;
  one that matches no incident is a false positive);
* **recall** = detected incidents / incidents the alert is responsible for (same ``incident_type`` as the
  rule's static label, and ``alertname`` if given); an undetected one is a false negative;
* **delay** = first matching ``fired_at`` - incident start (negative if the alert was already firing).

Overall figures use all alerts together: an incident is detected if any alert matches it. The *pages*
row does the same with the ``severity="page"`` alerts only: its precision is the share of pages that woke
someone for a real incident (tickets that outlive their incident do not count against it).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from receiver.backtest.engine import AlertResult, BacktestResult
from receiver.backtest.times import parse_time
from receiver.errors import BacktestError

__all__ = ["AlertScore", "FiringInterval", "Incident", "IncidentOutcome", "Score", "load_incidents", "score"]


@dataclass(frozen=True)
class Incident:
    model: str
    incident_type: str
    start: float
    end: float
    alertname: str | None = None
    name: str = ""


@dataclass(frozen=True)
class FiringInterval:
    alertname: str
    labels: dict[str, str]
    start: float
    end: float

    def matches(self, incident: Incident, grace: float) -> bool:
        return (
            self.labels.get("model") == incident.model
            and self.labels.get("incident_type") == incident.incident_type
            and (incident.alertname is None or incident.alertname == self.alertname)
            and self.start <= incident.end + grace
            and self.end > incident.start
        )


@dataclass
class AlertScore:
    alertname: str
    incident_type: str | None
    firing: int = 0
    true_positives: int = 0
    false_positives: int = 0
    incidents: int = 0
    detected: int = 0
    false_negatives: int = 0
    delays: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.firing if self.firing else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None

    @property
    def max_delay(self) -> float | None:
        return max(self.delays) if self.delays else None


@dataclass(frozen=True)
class IncidentOutcome:
    incident: Incident
    detected_by: tuple[str, ...]
    delay: float | None


@dataclass
class Score:
    grace: float
    alerts: list[AlertScore]
    overall: AlertScore
    by_type: list[AlertScore]
    incidents: list[IncidentOutcome]
    false_positive_intervals: list[FiringInterval]
    pages: AlertScore | None = None


def _intervals(result: AlertResult, range_end: float) -> list[FiringInterval]:
    return [
        FiringInterval(
            result.rule.alert,
            dict(e.labels),
            float(e.fired_at),
            range_end if e.resolved_at is None else e.resolved_at,
        )
        for e in result.episodes
        if e.fired_at is not None
    ]


def score(result: BacktestResult, incidents: Sequence[Incident], *, grace: float = 600.0) -> Score:
    """Precision, recall and delay per alert, per incident type and overall (see the module docstring)."""
    per_alert: list[AlertScore] = []
    all_intervals: list[FiringInterval] = []
    for alert in result.alerts:
        intervals = _intervals(alert, result.end)
        all_intervals.extend(intervals)
        kind = alert.rule.labels.get("incident_type")
        entry = AlertScore(alert.rule.alert, kind, firing=len(intervals))
        entry.true_positives = sum(1 for i in intervals if any(i.matches(inc, grace) for inc in incidents))
        entry.false_positives = entry.firing - entry.true_positives
        responsible = [
            inc
            for inc in incidents
            if inc.incident_type == kind and inc.alertname in (None, alert.rule.alert)
        ]
        entry.incidents = len(responsible)
        for inc in responsible:
            hits = [i.start for i in intervals if i.matches(inc, grace)]
            if hits:
                entry.detected += 1
                entry.delays.append(min(hits) - inc.start)
        entry.false_negatives = entry.incidents - entry.detected
        per_alert.append(entry)

    outcomes: list[IncidentOutcome] = []
    for inc in incidents:
        matched = [i for i in all_intervals if i.matches(inc, grace)]
        delay = min(i.start for i in matched) - inc.start if matched else None
        outcomes.append(IncidentOutcome(inc, tuple(sorted({i.alertname for i in matched})), delay))

    def aggregate(
        name: str, kind: str | None, chosen: list[IncidentOutcome], intervals: list[FiringInterval]
    ) -> AlertScore:
        entry = AlertScore(name, kind, firing=len(intervals), incidents=len(chosen))
        entry.true_positives = sum(1 for i in intervals if any(i.matches(o.incident, grace) for o in chosen))
        entry.false_positives = entry.firing - entry.true_positives
        entry.delays = [o.delay for o in chosen if o.delay is not None]
        entry.detected = len(entry.delays)
        entry.false_negatives = entry.incidents - entry.detected
        return entry

    overall = aggregate("(all alerts)", None, outcomes, all_intervals)
    page_intervals = [i for i in all_intervals if i.labels.get("severity") == "page"]
    page_outcomes = []
    for inc in incidents:
        matched = [i for i in page_intervals if i.matches(inc, grace)]
        delay = min(i.start for i in matched) - inc.start if matched else None
        page_outcomes.append(IncidentOutcome(inc, tuple(sorted({i.alertname for i in matched})), delay))
    pages = aggregate("(pages)", None, page_outcomes, page_intervals)
    kinds = sorted(
        {o.incident.incident_type for o in outcomes}
        | {str(i.labels["incident_type"]) for i in all_intervals if "incident_type" in i.labels}
    )
    by_type = [
        aggregate(
            kind,
            kind,
            [o for o in outcomes if o.incident.incident_type == kind],
            [i for i in all_intervals if i.labels.get("incident_type") == kind],
        )
        for kind in kinds
    ]
    unmatched = [i for i in all_intervals if not any(i.matches(inc, grace) for inc in incidents)]
    return Score(grace, per_alert, overall, by_type, outcomes, unmatched, pages)


def _incident(raw: Any, index: int, source: str, problems: list[str]) -> Incident | None:
    where = f"{source}: incident #{index + 1}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    missing = [k for k in ("model", "incident_type", "start", "end") if raw.get(k) in (None, "")]
    if missing:
        problems.append(f"{where}: missing {', '.join(missing)}")
        return None
    try:
        start = parse_time(raw["start"], f"{where} start")
        end = parse_time(raw["end"], f"{where} end")
    except BacktestError as exc:
        problems.append(exc.message)
        return None
    if end < start:
        problems.append(f"{where}: end is before start")
        return None
    alertname = raw.get("alertname")
    name = str(raw.get("name") or raw.get("id") or "")
    return Incident(
        str(raw["model"]),
        str(raw["incident_type"]),
        start,
        end,
        None if alertname is None else str(alertname),
        name,
    )


def load_incidents(path: str | Path) -> list[Incident]:
    """Incidents from YAML: a list (or ``{incidents: [...]}``) of ``model, incident_type, start, end``
    and optional ``alertname``/``name``. Raises :class:`BacktestError` listing every bad entry."""
    source = str(path)
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise BacktestError(f"cannot read incidents file {source}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise BacktestError(f"incidents file {source} is not valid YAML: {reason}") from exc
    if isinstance(document, dict):
        document = document.get("incidents")
    if not isinstance(document, list):
        raise BacktestError(f"incidents file {source} must hold a list of incidents (or 'incidents:' list)")
    problems: list[str] = []
    parsed = [_incident(raw, i, source, problems) for i, raw in enumerate(document)]
    if problems:
        raise BacktestError(f"invalid incidents file ({len(problems)} problem(s)): {problems[0]}", problems)
    return [inc for inc in parsed if inc is not None]
