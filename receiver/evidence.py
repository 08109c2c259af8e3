"""Evidence: run a runbook's PromQL queries when an incident opens and keep JSON snapshots of the answers.

Queries are runbook templates rendered in the sandbox. Alert label and annotation VALUES are data: before
rendering, :func:`query_context` replaces them with PromQL-string-escaped copies, so
``model="{{ labels.model }}"`` stays one string literal whatever the label holds (quotes, backslashes,
newlines). Write label values inside double quotes; the unescaped values remain available as
``raw_labels`` / ``raw_annotations`` for the rare query that needs them. Note that escaping makes a value a
safe *string*; inside ``=~`` it is still a regular expression.

Capturing never raises: an unreachable Prometheus gives a snapshot whose ``error`` reads
``"evidence unavailable: <reason>"``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from receiver.errors import PrometheusQueryError, PrometheusUnavailable, TemplateError
from receiver.prom import PrometheusClient, Sample
from receiver.runbooks.sections import EvidenceQuery
from receiver.store.base import IncidentStore
from receiver.templating import render

__all__ = [
    "CONTRACT_UNITS",
    "EvidenceRecorder",
    "EvidenceSnapshot",
    "capture_evidence",
    "contract_unit",
    "format_value",
    "promql_escape",
    "query_context",
    "render_query",
]

_ESCAPED_KEYS = ("labels", "annotations", "common_labels", "common_annotations", "group_labels")


def promql_escape(value: object) -> str:
    """Escape ``value`` for the inside of a double-quoted PromQL string literal."""
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def query_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``context`` whose label/annotation mappings hold PromQL-escaped values.

    The originals are kept as ``raw_<key>``; ``promql_escape`` is available as a function.
    """
    result = dict(context)
    for key in _ESCAPED_KEYS:
        value = context.get(key)
        if isinstance(value, Mapping):
            result[f"raw_{key}"] = value
            result[key] = {str(k): promql_escape(v) for k, v in value.items()}
    result["promql_escape"] = promql_escape
    return result


def render_query(query: str, context: Mapping[str, Any]) -> str:
    """Render a runbook PromQL template with escaped label values; raises :class:`TemplateError`."""
    return render(query, query_context(context)).strip()


def format_value(value: float | None, unit: str | None = None) -> str:
    """A compact human rendering: ``0.3127`` → ``"0.313"``, with the unit appended when given."""
    if value is None:
        return "no data"
    text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    if unit in (None, ""):
        return text
    if unit == "%":
        return f"{text}%"
    if unit == "ratio":  # 0..1 as data, and as a percentage for people: a full weight reads "1 (100%)"
        return f"{text} ({value * 100:.4g}%)"
    return f"{text} {unit}"


#: The display unit of each gauge of the metric contract (README), ``None`` for a plain number.
CONTRACT_UNITS: Mapping[str, str | None] = {
    "model_traffic_weight": "ratio",
    "model_slo_error_ratio": "ratio",
    "model_slo_latency_seconds": "s",
    "model_feature_psi": None,
    "model_auc": None,
    "model_auc_baseline": None,
    "model_prediction_baseline": None,
    "model_guardrail_level": None,
    "model_serving_info": None,
    "up": None,
}
_METRIC = re.compile(r"\b([a-z_:][a-z0-9_:]*)\s*\{")
_COUNTER_RATE = re.compile(r"\brate\(\s*([a-z_:][a-z0-9_:]*_total)\b")


def contract_unit(query: str) -> str | None:
    """The unit the metric contract implies for ``query``'s answer (a lint for runbook evidence).

    ``histogram_quantile`` of a ``*_seconds`` histogram -> ``s``; a rate of a counter over a rate of
    another counter -> ``ratio``; ``_sum`` over ``_count`` -> the histogram's own unit; a lone counter
    rate -> ``<thing>/s``; ``increase``, ``count`` -> a plain number; a contract gauge -> its unit.
    Raises ValueError for a query it cannot classify.
    """
    if "histogram_quantile" in query:
        return "s" if "_seconds_bucket" in query else None
    rates = _COUNTER_RATE.findall(query)
    if "/" in query:
        if len(rates) >= 2 and not any(m.endswith(("_sum", "_count")) for m in _METRIC.findall(query)):
            return "ratio"
        if "_sum{" in query and "_count{" in query:
            return "s" if "_seconds_sum" in query else None
    if rates and "/" not in query:
        return "req/s" if rates[0] == "model_requests_total" else f"{rates[0][6:-6]}/s"
    if re.match(r"^\s*(count|sum\(increase)\b", query):
        return None
    for metric in _METRIC.findall(query):
        if metric in CONTRACT_UNITS:
            return CONTRACT_UNITS[metric]
    raise ValueError(f"no contract unit known for {query!r}")


@dataclass(frozen=True)
class EvidenceSnapshot:
    """The answer to one evidence query at one moment. ``value`` is set when exactly one sample came back."""

    name: str
    query: str
    captured_at: str
    unit: str | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    value: float | str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def display(self) -> str:
        """What a status update quotes: the value, several values, ``no data`` or the error."""
        if self.error:
            return self.error
        if not self.samples:
            return "no data"
        if len(self.samples) == 1:
            return _display_sample(self.samples[0], self.unit, with_labels=False)
        # one figure per series, named by the labels that tell them apart (version, feature...), not by
        # the job/instance/model every series shares
        varying = _varying_labels(self.samples)
        shown = ", ".join(
            _display_sample(s, self.unit, with_labels=True, only=varying) for s in self.samples[:5]
        )
        more = len(self.samples) - 5
        return shown + (f" (+{more} more)" if more > 0 else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "query": self.query,
            "captured_at": self.captured_at,
            "unit": self.unit,
            "samples": [dict(s) for s in self.samples],
            "value": self.value,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvidenceSnapshot:
        return cls(
            name=str(data["name"]),
            query=str(data.get("query", "")),
            captured_at=str(data.get("captured_at", "")),
            unit=data.get("unit"),
            samples=[dict(s) for s in data.get("samples", [])],
            value=data.get("value"),
            error=data.get("error"),
        )


#: How Prometheus's non-numbers read in a status update (NaN is almost always 0/0: a ratio over a window
#: with nothing in it, e.g. the error ratio of a version that got no traffic).
_NON_NUMBERS = {
    "NaN": "n/a (nothing in the window)",
    "+Inf": "+Inf (divided by 0)",
    "-Inf": "-Inf (divided by 0)",
}


def _varying_labels(samples: list[dict[str, Any]]) -> frozenset[str]:
    names = {name for s in samples for name in (s.get("labels") or {})}
    return frozenset(name for name in names if len({(s.get("labels") or {}).get(name) for s in samples}) > 1)


def _display_sample(
    sample: Mapping[str, Any], unit: str | None, *, with_labels: bool, only: frozenset[str] | None = None
) -> str:
    raw = sample.get("value")
    if isinstance(raw, float) and not math.isfinite(raw):
        raw = "NaN" if math.isnan(raw) else ("+Inf" if raw > 0 else "-Inf")
    numeric = isinstance(raw, (int, float))
    text = format_value(raw, unit) if numeric else _NON_NUMBERS.get(str(raw), f"{raw}")
    if not with_labels:
        return text
    labels = sample.get("labels") or {}
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if only is None or k in only)
    return f"{{{shown}}} {text}" if shown else text


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")


def _snapshot_from_samples(
    name: str, query: str, unit: str | None, captured_at: str, samples: list[Sample]
) -> EvidenceSnapshot:
    as_json = [s.to_json() for s in samples]
    value = as_json[0]["value"] if len(as_json) == 1 else None
    return EvidenceSnapshot(
        name=name, query=query, captured_at=captured_at, unit=unit, samples=as_json, value=value
    )


def capture_evidence(
    client: PrometheusClient,
    evidence: Iterable[EvidenceQuery],
    context: Mapping[str, Any],
    *,
    now: float | None = None,
) -> list[EvidenceSnapshot]:
    """Run each evidence query and return one snapshot per query, in order. Never raises for Prometheus or
    template trouble: the snapshot's ``error`` says what went wrong."""
    snapshots: list[EvidenceSnapshot] = []
    for spec in evidence:
        name, unit, template = spec.name, spec.unit, spec.query
        captured_at = _iso(now if now is not None else time.time())
        if not template.strip():
            snapshots.append(
                EvidenceSnapshot(
                    name, "", captured_at, unit, error="evidence query invalid: no 'query' given"
                )
            )
            continue
        try:
            query = render_query(template, context)
        except TemplateError as exc:
            snapshots.append(
                EvidenceSnapshot(
                    name, template, captured_at, unit, error=f"evidence query invalid: {exc.message}"
                )
            )
            continue
        try:
            samples = client.query(query)
        except PrometheusUnavailable as exc:
            snapshots.append(
                EvidenceSnapshot(name, query, captured_at, unit, error=f"evidence unavailable: {exc.message}")
            )
            continue
        except PrometheusQueryError as exc:
            snapshots.append(
                EvidenceSnapshot(
                    name, query, captured_at, unit, error=f"evidence query failed: {exc.message}"
                )
            )
            continue
        snapshots.append(_snapshot_from_samples(name, query, unit, captured_at, samples))
    return snapshots


class EvidenceRecorder:
    """Captures an incident's evidence in the background and records it on the timeline, once per moment.

    Containment never waits for a slow Prometheus: :meth:`start` submits the queries, the caller contains,
    and :meth:`finish` waits only for what is left of the budget (counted from the start) for all queries of
    that moment together, then records either the snapshots or that the evidence was unavailable.
    """

    def __init__(
        self, prometheus: PrometheusClient, log: IncidentStore, *, budget: float, workers: int = 4
    ) -> None:
        self.prometheus, self.log, self.budget = prometheus, log, budget
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="evidence")

    def start(
        self,
        incident_id: int,
        specs: Iterable[EvidenceQuery],
        context: Mapping[str, Any],
        moment: str,
    ) -> tuple[float, Future[list[EvidenceSnapshot]]] | None:
        """Submit the queries (None: nothing to capture, or this moment was recorded already)."""
        specs = list(specs)
        if not specs or self.log.has_timeline(incident_id, f"evidence:{moment}"):
            return None
        future = self._pool.submit(capture_evidence, self.prometheus, specs, context)
        return time.monotonic() + self.budget, future

    def finish(
        self, incident_id: int, moment: str, started: tuple[float, Future[list[EvidenceSnapshot]]] | None
    ) -> None:
        if started is None:
            return
        deadline, future = started
        key = f"evidence:{moment}"
        try:
            snapshots = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            budget = f"{self.budget:g}s"
            self.log.add_timeline(
                incident_id,
                "evidence",
                f"evidence unavailable: Prometheus did not answer within the {budget} evidence budget",
                {"moment": moment, "snapshots": [], "error": "budget exceeded"},
                dedupe_key=key,
            )
            return
        self.log.add_timeline(
            incident_id,
            "evidence",
            "; ".join(f"{s.name}: {s.display()}" for s in snapshots),
            {"moment": moment, "snapshots": [s.to_json() for s in snapshots]},
            dedupe_key=key,
        )
