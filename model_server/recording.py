"""The hot path of the metric contract: the per-model and per-version state that requests update.

A request's calls take at most the model's one lock and touch plain Python counters, histograms and windows;
the Prometheus families are built from this state at scrape time, in :mod:`model_server.exposition`. Split
from the export so the per-request cost can be read, and benchmarked, in one place.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client.core import HistogramMetricFamily

from model_server.auc import OnlineAUC, PendingPredictions
from model_server.instrument_config import (
    EXTRA_FEATURE_LABEL,
    OTHER_TOOL_LABEL,
    BaselineLike,
    InstrumentationConfig,
)
from model_server.psi import FeatureDriftWindow
from model_server.toxicity import ToxicityClassifier

__all__ = ["InputCheck", "ModelInstruments", "VersionInstruments"]

_NUMERIC_TYPES = frozenset({int, float})
_KINDS = ("null", "out_of_range", "schema")


class _Histogram:
    """Bucket counts with Prometheus ``le`` semantics (a value equal to a bound is in that bucket)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = sorted({float(b) for b in bounds if math.isfinite(b)})
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def export(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative, running = [], 0
        for bound, count in zip([*self.bounds, math.inf], self.counts, strict=True):
            running += count
            cumulative.append((_le(bound), running))
        family.add_metric(labels, cumulative, self.total)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


@dataclass
class InputCheck:
    """A request's features as a float row in baseline order (NaN where missing, null or non-numeric)."""

    row: np.ndarray
    problems: list[tuple[str, str]]

    @property
    def schema_errors(self) -> list[str]:
        """Features whose value was present but not a number."""
        return [f for f, kind in self.problems if kind == "schema" and f != EXTRA_FEATURE_LABEL]


class VersionInstruments:
    """Per (model, version) state. Create through :meth:`ModelInstruments.version`."""

    def __init__(
        self,
        model: ModelInstruments,
        version: str,
        *,
        baseline: BaselineLike | None,
        metadata: Mapping[str, Any],
        feature_names: Sequence[str],
    ) -> None:
        cfg = model.config
        self.model = model
        self.version = version
        self.baseline = baseline
        self.metadata = dict(metadata)
        self.feature_names = list(feature_names)
        self._lock = model.lock
        self._names_set = frozenset(self.feature_names)
        slo = self.metadata.get("slo_latency_seconds", model.slo_latency_seconds)
        buckets = list(self.metadata.get("latency_buckets") or model.latency_buckets)
        if slo is not None:
            buckets.append(float(slo))
        self.latency = _Histogram(buckets)
        self.scores = _Histogram(cfg.score_buckets)
        self.ok = 0
        self.errors = 0
        self.outputs = 0
        self.toxic_outputs = 0
        self.blocked_outputs = 0
        self.tool_calls: dict[tuple[str, str], int] = {}
        self._tool_names = cfg.tool_names
        self.problems: dict[tuple[str, str], int] = {
            (f, kind): 0 for f in self.feature_names for kind in _KINDS
        }
        self.problems[(EXTRA_FEATURE_LABEL, "schema")] = 0
        self.auc = OnlineAUC(cfg.auc_window)
        self.drift: FeatureDriftWindow | None = None
        n = len(self.feature_names)
        self._lo = np.full(n, -np.inf)
        self._hi = np.full(n, np.inf)
        if baseline is not None and self.feature_names:
            by_name = {fb.name: fb for fb in baseline.features}
            missing = [n for n in self.feature_names if n not in by_name]
            if missing:
                raise ValueError(f"baseline of {model.name}/{version} has no bins for features {missing}")
            fbs = [by_name[name] for name in self.feature_names]
            self.drift = FeatureDriftWindow(
                self.feature_names,
                [fb.edges for fb in fbs],
                [fb.proportions for fb in fbs],
                window=cfg.psi_window,
                epsilon=cfg.psi_epsilon,
                min_samples=cfg.psi_min_samples,
                flush_every=cfg.psi_flush_every,
            )
            for i, fb in enumerate(fbs):
                span = float(fb.max) - float(fb.min)
                if span <= 0:
                    span = max(abs(float(fb.max)), 1.0)
                self._lo[i] = float(fb.min) - cfg.range_tolerance * span
                self._hi[i] = float(fb.max) + cfg.range_tolerance * span

    # -- hot path ------------------------------------------------------------------------------------
    def check_input(self, features: Mapping[str, Any]) -> InputCheck:
        """Convert a request's features to a row and count data-quality problems (never raises on values)."""
        names = self.feature_names
        try:
            values = [features[n] for n in names]
        except (KeyError, TypeError):
            values = None
        if values is not None and len(features) == len(names) and set(map(type, values)) <= _NUMERIC_TYPES:
            row = np.array(values, dtype=float)
            inside = (row >= self._lo) & (row <= self._hi)  # False for NaN too
            if inside.all():
                return InputCheck(row, [])
        return self._check_slow(features)

    def _check_slow(self, features: Mapping[str, Any]) -> InputCheck:
        problems: list[tuple[str, str]] = []
        if not isinstance(features, Mapping):
            features = {}
        row = np.full(len(self.feature_names), np.nan)
        for i, name in enumerate(self.feature_names):
            if name not in features:
                problems.append((name, "schema"))
                continue
            value = features[name]
            if value is None:
                problems.append((name, "null"))
                continue
            if type(value) not in _NUMERIC_TYPES:
                problems.append((name, "schema"))
                continue
            number = float(value)
            if math.isnan(number):
                problems.append((name, "null"))
                continue
            row[i] = number
            if not self._lo[i] <= number <= self._hi[i]:
                problems.append((name, "out_of_range"))
        if any(k not in self._names_set for k in features):
            problems.append((EXTRA_FEATURE_LABEL, "schema"))
        with self._lock:
            for key in problems:
                self.problems[key] += 1
        return InputCheck(row, problems)

    def observe(
        self,
        row: np.ndarray | None,
        score: float | None,
        duration_seconds: float,
        request_id: str | None = None,
    ) -> None:
        """One successful request: latency, outcome ok, score distribution, input window, label join."""
        with self._lock:
            self.latency.observe(duration_seconds)
            self.ok += 1
            if score is not None:
                self.scores.observe(score)
                if request_id is not None:
                    self.model.pending.add(request_id, self, score)
            if row is not None and self.drift is not None:
                self.drift.add(row)

    def observe_error(self, duration_seconds: float) -> None:
        with self._lock:
            self.latency.observe(duration_seconds)
            self.errors += 1

    def observe_output(self, *, toxic: bool, blocked: bool = False) -> None:
        """One generated output; ``blocked`` means a guardrail withheld it (so it was not served)."""
        with self._lock:
            self.outputs += 1
            if blocked:
                self.blocked_outputs += 1
            elif toxic:
                self.toxic_outputs += 1

    def observe_tools(self, *, allowed: Sequence[str] = (), refused: Sequence[str] = ()) -> None:
        """The tool calls of one request by policy outcome (names outside ``tool_names`` count as
        ``_other``)."""
        if not allowed and not refused:
            return
        known, calls = self._tool_names, self.tool_calls
        with self._lock:
            for outcome, names in (("allowed", allowed), ("refused", refused)):
                for name in names:
                    key = (name if name in known else OTHER_TOOL_LABEL, outcome)
                    calls[key] = calls.get(key, 0) + 1

    # -- reads ---------------------------------------------------------------------------------------
    def psi(self) -> dict[str, float | None]:
        with self._lock:
            return self.drift.psi() if self.drift is not None else {}

    def online_auc(self) -> float | None:
        with self._lock:
            return self.auc.value()


class ModelInstruments:
    """Per-model state: its versions, serving state and the pending-label join. Create via ServingMetrics."""

    def __init__(
        self,
        name: str,
        config: InstrumentationConfig,
        *,
        latency_buckets: Sequence[float],
        slo_latency_seconds: float | None,
        slo_error_ratio: float | None,
        toxicity: ToxicityClassifier,
    ) -> None:
        self.name = name
        self.config = config
        self.latency_buckets = list(latency_buckets)
        self.slo_latency_seconds = slo_latency_seconds
        self.slo_error_ratio = slo_error_ratio
        self.toxicity = toxicity
        self.lock = threading.Lock()
        self.pending: PendingPredictions[VersionInstruments] = PendingPredictions(
            max_pending=config.pending_max, ttl_seconds=config.pending_ttl_seconds
        )
        self.versions: dict[str, VersionInstruments] = {}
        self.active: str | None = None
        self.traffic: dict[str, float] = {}
        self.mode = "normal"
        self.guardrail_level = 0
        self.tools_blocked = False

    def version(
        self,
        version: str,
        *,
        baseline: BaselineLike | None = None,
        metadata: Mapping[str, Any] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> VersionInstruments:
        """The instruments of ``version``, created on first use (later calls return the same object)."""
        with self.lock:
            existing = self.versions.get(version)
        if existing is not None:
            return existing
        meta = dict(metadata or {})
        names = list(
            feature_names
            or meta.get("feature_names")
            or ([fb.name for fb in baseline.features] if baseline is not None else [])
        )
        created = VersionInstruments(self, version, baseline=baseline, metadata=meta, feature_names=names)
        with self.lock:
            return self.versions.setdefault(version, created)

    def set_serving(
        self,
        *,
        active: str | None,
        traffic: Mapping[str, float],
        mode: str = "normal",
        guardrail_level: int = 0,
        tools_blocked: bool = False,
    ) -> None:
        """Mirror the registry: active version, traffic in percent, serving mode, guardrail level and
        whether risky tools are blocked."""
        if mode not in ("normal", "fallback"):
            raise ValueError(f"mode must be 'normal' or 'fallback', got {mode!r}")
        with self.lock:
            self.active = active
            self.traffic = {v: float(w) for v, w in traffic.items()}
            self.mode = mode
            self.guardrail_level = int(guardrail_level)
            self.tools_blocked = bool(tools_blocked)

    def record_label(self, request_id: str, label: int) -> bool:
        """Join a delayed label to its prediction; False if unknown or expired."""
        with self.lock:
            joined = self.pending.pop(request_id)
            if joined is None:
                return False
            joined.owner.auc.add(joined.score, label)
            return True

    def serving_roles(self) -> dict[str, str]:
        """version -> "active" | "split" for versions that currently receive traffic."""
        roles = {v: "split" for v, w in self.traffic.items() if w > 0 and v != self.active}
        if self.active is not None:
            roles[self.active] = "active"
        return roles
