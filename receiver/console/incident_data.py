"""What the incident page shows, gathered in one place: the store's rows, the registry now, and charts.

Each source is optional and fails soft: a Prometheus that cannot be reached draws charts with the error in
them, an unreadable registry says so, a store without the approvals aggregate shows no approvals. Range
queries run in parallel (one pool per console) under one time budget, so ten charts cost about one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from receiver.console.charts import MAX_SERIES, Chart, Marker, Series, render_chart
from receiver.errors import PrometheusError
from receiver.evidence import render_query
from receiver.prom import PrometheusClient
from receiver.runbooks import Runbook, RunbookSet
from receiver.store.base import IncidentDetail, LedgerRow, OutboxMessage, Store, TimelineEntry
from receiver.template_context import template_context

__all__ = [
    "ChartSpec",
    "IncidentData",
    "finish_charts",
    "gather",
    "incident_window",
    "markers",
    "parse_stamp",
    "start_charts",
]

log = logging.getLogger("receiver.console")

_COMPARISON = re.compile(
    r"^(?P<expr>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>-?[0-9.]+(?:[eE][-+]?\d+)?)\s*$"
)
_FINAL_ACTION_EVENTS = ("succeeded", "failed", "refused", "skipped", "dry_run", "interrupted", "unknown")


def parse_stamp(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class ChartSpec:
    title: str
    query: str  # as it runs (labels filled in)
    threshold: float | None = None
    kind: str = "evidence"  # evidence | verify


@dataclass
class IncidentData:
    detail: IncidentDetail
    runbook: Runbook | None
    ledger: list[LedgerRow]
    outbox: list[OutboxMessage]
    approvals: list[Any]
    registry: dict[str, Any] | None
    registry_error: str | None
    verification: dict[str, Any]
    owners: dict[str, str] = field(default_factory=dict)
    evidence: list[TimelineEntry] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)


def incident_window(detail: IncidentDetail, now: float) -> tuple[float, float]:
    """From a little before the first alert (or the opening) to a little after resolution (or now)."""
    incident = detail.incident
    starts = [parse_stamp(a.starts_at) for a in detail.alerts]
    opened = parse_stamp(incident.opened_at) or now
    first = min([s for s in starts if s is not None] + [opened])
    last = parse_stamp(incident.resolved_at) or parse_stamp(incident.closed_at) or now
    last = min(max(last, opened + 60), now)
    pad = max(300.0, (last - first) * 0.15)
    return first - pad, min(now, last + pad)


def markers(detail: IncidentDetail, approvals: Sequence[Any] = ()) -> list[Marker]:
    incident = detail.incident
    found: list[Marker] = []
    opened = parse_stamp(incident.opened_at)
    if opened is not None:
        found.append(Marker(opened, "opened", f"opened {incident.opened_at}"))
    for entry in detail.timeline:
        if entry.kind == "action" and entry.data.get("event") in _FINAL_ACTION_EVENTS:
            ts = parse_stamp(entry.at)
            if ts is not None:
                label = f"{entry.data.get('action', 'action')} {entry.data.get('event')} at {entry.at}"
                found.append(Marker(ts, "action", label))
    for approval in approvals:
        ts = parse_stamp(approval.decided_at)
        if ts is not None:
            found.append(Marker(ts, "approval", f"{approval.kind} {approval.state} by {approval.decided_by}"))
    for kind, stamp in (("contained", incident.contained_at), ("resolved", incident.resolved_at)):
        ts = parse_stamp(stamp)
        if ts is not None:
            found.append(Marker(ts, kind, f"{kind} {stamp}"))
    return found


def chart_specs(detail: IncidentDetail, runbook: Runbook | None) -> list[ChartSpec]:
    """The runbook's evidence queries and its verify query, as they run for this incident. A verify
    query ``expr < 0.2`` is charted as ``expr`` with a threshold line at 0.2."""
    if runbook is None:
        return []
    context = template_context(detail)
    specs: list[ChartSpec] = []

    def shown(query: Any) -> str:
        try:
            return render_query(str(query or ""), context)
        except Exception:
            return str(query or "")

    for item in runbook.evidence:
        specs.append(ChartSpec(item.name or item.query, shown(item.query)))
    if runbook.verify is not None and runbook.verify.query:
        query = shown(runbook.verify.query)
        match = _COMPARISON.match(query)
        if match:
            specs.append(ChartSpec(f"verify: {query}", match["expr"], float(match["value"]), kind="verify"))
        else:
            specs.append(ChartSpec(f"verify: {query}", query, kind="verify"))
    return specs


def _series_label(labels: Mapping[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or labels.get("__name__", "value")


def start_charts(
    prometheus: PrometheusClient | None,
    pool: ThreadPoolExecutor,
    specs: Sequence[ChartSpec],
    window: tuple[float, float],
    chart_markers: Sequence[Marker],
) -> list[Future[Chart]]:
    """Submit one range query (and its SVG) per spec to ``pool``; :func:`finish_charts` collects them."""
    start, end = window
    step = max(1.0, round((end - start) / 180))

    def one(spec: ChartSpec) -> Chart:
        if prometheus is None:
            return Chart(
                spec.title, spec.query, start, end, (), chart_markers, spec.threshold, "no Prometheus"
            )
        try:
            found = prometheus.query_range(spec.query, start, end, step)
        except (PrometheusError, ValueError) as exc:
            return Chart(spec.title, spec.query, start, end, (), chart_markers, spec.threshold, str(exc))
        return _drawn(spec, found)

    def _drawn(spec: ChartSpec, found: list[Any]) -> Chart:
        series = [Series(_series_label(s.labels), s.values) for s in found]
        firsts = [s.points[0][0] for s in series if s.points]
        # data that begins inside the window (a new series, a young Prometheus): start the axis there
        shown_start = max(start, min(firsts) - 4 * step) if firsts else start
        shown_start = min(shown_start, min((m.ts for m in chart_markers), default=shown_start) - 2 * step)
        chart = Chart(
            spec.title,
            spec.query,
            max(start, shown_start),
            end,
            series[:MAX_SERIES],
            chart_markers,
            spec.threshold,
            more_series=max(0, len(series) - MAX_SERIES),
        )
        return _with_svg(chart)

    def drawn_one(spec: ChartSpec) -> Chart:
        chart = one(spec)
        return chart if chart.svg else _with_svg(chart)

    return [pool.submit(drawn_one, spec) for spec in specs]


def _with_svg(chart: Chart) -> Chart:
    return replace(chart, svg=str(render_chart(chart)))


def finish_charts(
    specs: Sequence[ChartSpec],
    futures: Sequence[Future[Chart]],
    window: tuple[float, float],
    chart_markers: Sequence[Marker],
    *,
    budget: float = 5.0,
) -> list[Chart]:
    start, end = window
    wait(futures, timeout=budget)
    charts = []
    for spec, future in zip(specs, futures, strict=True):
        if future.done() and future.exception() is None:
            chart = future.result()
        else:
            future.cancel()
            chart = Chart(
                spec.title,
                spec.query,
                start,
                end,
                (),
                chart_markers,
                spec.threshold,
                f"Prometheus did not answer within {budget:g}s",
            )
        charts.append(Chart(**{**chart.__dict__, "svg": str(render_chart(chart))}))
    return charts


def _registry(path: Path | None, model: str | None) -> tuple[dict[str, Any] | None, str | None]:
    if path is None or not model:
        return None, None if path is not None else "no registry configured"
    try:
        from model_registry import open_registry

        state = open_registry(str(path), create=False).state(model)
    except Exception as exc:  # the page still renders; the error is shown instead
        return None, f"{type(exc).__name__}: {exc}"
    fields = ("active_version", "last_known_good", "traffic", "mode", "tools_blocked")
    return {name: getattr(state, name) for name in fields if hasattr(state, name)}, None


def _verification(store: Store, detail: IncidentDetail) -> dict[str, Any]:
    kinds = ("verification_started", "verification", "contained", "verification_failed")
    last = next((e for e in reversed(detail.timeline) if e.kind in kinds), None)
    pending = [t for t in store.timers.pending(detail.incident.id) if t.kind == "verify"]
    if detail.incident.contained_at:
        status = "passed"
    elif last is not None and last.kind == "verification_failed":
        status = "failed"
    elif pending:
        status = "checking"
    else:
        status = "not started"
    return {"status": status, "last": last, "checking": bool(pending)}


def gather(
    store: Store,
    runbooks: RunbookSet,
    incident_id: int,
    *,
    prometheus: PrometheusClient | None,
    pool: ThreadPoolExecutor,
    registry_db: Path | None,
    with_charts: bool = True,
    now: float | None = None,
) -> IncidentData:
    detail = store.get_incident(incident_id)
    try:
        runbook: Runbook | None = runbooks.get(detail.incident.runbook_id)
    except Exception:
        runbook = None
    approvals = list(store.approvals.for_incident(incident_id))
    window = incident_window(detail, now if now is not None else time.time())
    chart_markers = markers(detail, approvals)
    specs = chart_specs(detail, runbook) if with_charts else []
    pending = start_charts(prometheus, pool, specs, window, chart_markers)  # queries run meanwhile
    registry, registry_error = _registry(registry_db, detail.incident.model)
    data = IncidentData(
        detail=detail,
        runbook=runbook,
        ledger=list(store.ledger.rows(str(incident_id))),
        outbox=list(store.outbox.select(incident_id=str(incident_id))),
        approvals=approvals,
        registry=registry,
        registry_error=registry_error,
        verification=_verification(store, detail),
    )
    if runbook is not None:
        try:
            data.owners, _problems = runbook.render_owners(template_context(detail)["labels"])
        except Exception as exc:  # an owner template error shows, the page still renders
            data.owners = {"owners": f"cannot render: {exc}"}
    data.window = window
    data.evidence = [e for e in detail.timeline if e.kind == "evidence"]
    data.charts = finish_charts(specs, pending, window, chart_markers)
    return data
