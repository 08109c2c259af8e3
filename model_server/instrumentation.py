"""The metric contract (DESIGN.md) for any Python model server, on an injected ``CollectorRegistry``.

::

    metrics = ServingMetrics(CollectorRegistry())          # registers one collector
    model = metrics.model("credit", latency_buckets=[...], slo_latency_seconds=0.1, slo_error_ratio=0.01)
    v1 = model.version("v1", baseline=baseline, metadata=metadata)
    model.set_serving(active="v1", traffic={"v1": 100.0}, mode="normal", guardrail_level=0)
    check = v1.check_input(features_dict)                   # counts null / out_of_range / schema problems
    v1.observe(check.row, score, duration_seconds, request_id="r-1")   # ok request
    v1.observe_error(duration_seconds)                      # failed request
    model.record_label("r-1", 1)                            # delayed label -> online AUC
    v1.observe_output(toxic=False)                          # LLM outputs
    v1.observe_tools(allowed=["search"], refused=["code_exec"])   # LLM tool calls by policy outcome

Hot-path calls take one lock and touch plain Python counters; the Prometheus families are built at scrape
time by :meth:`ServingMetrics.collect`, so the per-request cost stays in the low microseconds.

Export rules worth knowing when writing alerts:

* Counters and histograms are exported for every version the process has seen.
* Window gauges (``model_feature_psi``, ``model_auc``) and ``model_serving_info`` are exported only for
  versions currently serving (active, or split with weight > 0): a version taken out of traffic keeps a
  frozen window, and exporting it would keep a drift alert firing after a successful rollback.
* Model-level gauges (``model_guardrail_level``, ``model_tools_blocked``, ``model_slo_latency_seconds``,
  ``model_slo_error_ratio``) are one series per model, labelled with the active version, so ``on(model)``
  joins stay one-to-one.
* ``model_traffic_weight`` is a ratio in [0, 1] for every known version (0 when not serving).
* ``model_input_problems_total`` is pre-initialised to 0 for every baseline feature and kind; unknown
  (extra) request fields are counted as ``feature="_extra", kind="schema"`` to bound label cardinality.
* ``model_toxic_outputs_total`` counts toxic outputs actually served; outputs a guardrail withheld are
  counted in ``model_blocked_outputs_total`` (an addition to the contract) and in ``model_outputs_total``.
* ``model_tool_calls_total{tool, outcome="allowed|refused"}`` counts tool calls an LLM request asked for.
  ``tool`` is the name as given when it is in ``InstrumentationConfig.tool_names``, else ``_other``, so
  a client cannot grow the label set; series appear on a version's first tool call (not pre-initialised,
  so classifiers export none).
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from model_server.auc import OnlineAUC, PendingPredictions
from model_server.psi import DEFAULT_EPSILON, FeatureDriftWindow, PSIThresholds
from model_server.toxicity import LexiconToxicity, ToxicityClassifier

__all__ = [
    "DEFAULT_LATENCY_BUCKETS",
    "DEFAULT_SCORE_BUCKETS",
    "DEFAULT_TOOL_NAMES",
    "EXTRA_FEATURE_LABEL",
    "OTHER_TOOL_LABEL",
    "BaselineLike",
    "InputCheck",
    "InstrumentationConfig",
    "ModelInstruments",
    "ServingMetrics",
    "VersionInstruments",
]

DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DEFAULT_SCORE_BUCKETS: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(1, 11))
EXTRA_FEATURE_LABEL = "_extra"
#: Tool names exported as themselves in ``model_tool_calls_total``; any other name counts as ``_other``.
DEFAULT_TOOL_NAMES: frozenset[str] = frozenset(
    {
        "web_browse",
        "code_exec",
        "send_email",
        "file_write",
        "file_read",
        "shell",
        "http_request",
        "search",
        "calculator",
        "weather",
        "translate",
        "calendar",
    }
)
OTHER_TOOL_LABEL = "_other"
_NUMERIC_TYPES = frozenset({int, float})
_KINDS = ("null", "out_of_range", "schema")


class FeatureBaselineLike(Protocol):
    """One feature of a baseline: interior bin ``edges`` (open-ended outer bins), proportions, range."""

    name: str
    edges: Sequence[float]
    proportions: Sequence[float]
    min: float
    max: float


class BaselineLike(Protocol):
    """What the instrumentation reads from a registry baseline (``model_registry.Baseline`` fits)."""

    auc: float | None
    score_mean: float
    score_std: float
    positive_rate: float
    features: Sequence[FeatureBaselineLike]


@dataclass(frozen=True)
class InstrumentationConfig:
    """Window sizes and tolerances.

    ``range_tolerance`` widens the baseline [min, max] by that fraction of its span on each side before a
    value counts as out of range (a constant feature uses span = max(|x|, 1)).
    """

    psi_window: int = 1000
    psi_min_samples: int = 100
    psi_epsilon: float = DEFAULT_EPSILON
    psi_thresholds: PSIThresholds = field(default_factory=PSIThresholds)
    psi_flush_every: int = 32
    auc_window: int = 2000
    pending_max: int = 100_000
    pending_ttl_seconds: float = 3600.0
    range_tolerance: float = 0.1
    score_buckets: tuple[float, ...] = DEFAULT_SCORE_BUCKETS
    tool_names: frozenset[str] = DEFAULT_TOOL_NAMES


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


class ServingMetrics(Collector):
    """One collector exporting the metric contract for every model added to it."""

    def __init__(self, registry: CollectorRegistry, config: InstrumentationConfig | None = None) -> None:
        self.config = config or InstrumentationConfig()
        self._models: dict[str, ModelInstruments] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def model(
        self,
        name: str,
        *,
        latency_buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
        slo_latency_seconds: float | None = None,
        slo_error_ratio: float | None = None,
        toxicity: ToxicityClassifier | None = None,
    ) -> ModelInstruments:
        with self._lock:
            if name not in self._models:
                self._models[name] = ModelInstruments(
                    name,
                    self.config,
                    latency_buckets=latency_buckets,
                    slo_latency_seconds=slo_latency_seconds,
                    slo_error_ratio=slo_error_ratio,
                    toxicity=toxicity or LexiconToxicity(),
                )
            return self._models[name]

    def describe(self) -> Iterable[Metric]:
        return _Families().all()

    def collect(self) -> Iterator[Metric]:
        fam = _Families()
        with self._lock:
            models = list(self._models.values())
        for model in models:
            _collect_model(model, fam)
        yield from fam.all()


class _Families:
    """The contract's metric families for one scrape."""

    def __init__(self) -> None:
        mv = ["model", "version"]
        self.latency = HistogramMetricFamily(
            "model_request_duration_seconds", "Inference latency in seconds.", labels=mv
        )
        self.requests = CounterMetricFamily(
            "model_requests", "Requests by outcome (ok|error).", labels=[*mv, "outcome"]
        )
        self.score = HistogramMetricFamily(
            "model_prediction_score", "Distribution of model outputs.", labels=mv
        )
        self.baseline = GaugeMetricFamily(
            "model_prediction_baseline",
            "Output statistics of the version's validation set.",
            labels=[*mv, "stat"],
        )
        self.psi = GaugeMetricFamily(
            "model_feature_psi",
            "PSI of the recent input window against the version's baseline bins.",
            labels=[*mv, "feature"],
        )
        self.problems = CounterMetricFamily(
            "model_input_problems",
            "Input data-quality problems (null|out_of_range|schema).",
            labels=[*mv, "feature", "kind"],
        )
        self.auc = GaugeMetricFamily("model_auc", "Online AUC over the recent labelled window.", labels=mv)
        self.auc_baseline = GaugeMetricFamily(
            "model_auc_baseline", "Validation AUC at registration.", labels=mv
        )
        self.labeled = CounterMetricFamily(
            "model_labeled_samples", "Delayed labels joined to a prediction.", labels=mv
        )
        self.outputs = CounterMetricFamily("model_outputs", "Generated outputs.", labels=mv)
        self.toxic = CounterMetricFamily("model_toxic_outputs", "Toxic outputs served.", labels=mv)
        self.blocked = CounterMetricFamily(
            "model_blocked_outputs", "Outputs withheld by the guardrail.", labels=mv
        )
        self.tool_calls = CounterMetricFamily(
            "model_tool_calls",
            "Tool calls requested by LLM requests, by policy outcome (allowed|refused).",
            labels=[*mv, "tool", "outcome"],
        )
        self.guardrail = GaugeMetricFamily("model_guardrail_level", "Guardrail level 0..3.", labels=mv)
        self.tools_blocked = GaugeMetricFamily(
            "model_tools_blocked", "1 while the registry blocks risky tools, else 0.", labels=mv
        )
        self.serving = GaugeMetricFamily(
            "model_serving_info", "1 for each serving version.", labels=[*mv, "mode", "role"]
        )
        self.weight = GaugeMetricFamily(
            "model_traffic_weight", "Share of traffic routed to the version (0..1).", labels=mv
        )
        self.slo_latency = GaugeMetricFamily("model_slo_latency_seconds", "Latency objective.", labels=mv)
        self.slo_error = GaugeMetricFamily("model_slo_error_ratio", "Error-ratio objective.", labels=mv)

    def all(self) -> list[Metric]:
        return [
            self.latency,
            self.requests,
            self.score,
            self.baseline,
            self.psi,
            self.problems,
            self.auc,
            self.auc_baseline,
            self.labeled,
            self.outputs,
            self.toxic,
            self.blocked,
            self.tool_calls,
            self.guardrail,
            self.tools_blocked,
            self.serving,
            self.weight,
            self.slo_latency,
            self.slo_error,
        ]


def _collect_model(model: ModelInstruments, fam: _Families) -> None:
    with model.lock:
        versions = list(model.versions.values())
        roles = model.serving_roles()
        traffic = dict(model.traffic)
        mode, guardrail, active = model.mode, model.guardrail_level, model.active
        tools_blocked = model.tools_blocked
        for vi in versions:
            labels = [model.name, vi.version]
            vi.latency.export(fam.latency, labels)
            vi.scores.export(fam.score, labels)
            fam.requests.add_metric([*labels, "ok"], vi.ok)
            fam.requests.add_metric([*labels, "error"], vi.errors)
            for (feature, kind), count in vi.problems.items():
                fam.problems.add_metric([*labels, feature, kind], count)
            fam.labeled.add_metric(labels, vi.auc.labeled)
            fam.outputs.add_metric(labels, vi.outputs)
            fam.toxic.add_metric(labels, vi.toxic_outputs)
            fam.blocked.add_metric(labels, vi.blocked_outputs)
            for (tool, outcome), count in vi.tool_calls.items():
                fam.tool_calls.add_metric([*labels, tool, outcome], count)
            fam.weight.add_metric(labels, traffic.get(vi.version, 0.0) / 100.0)
            base = vi.baseline
            if base is not None:
                for stat, value in (
                    ("mean", base.score_mean),
                    ("stddev", base.score_std),
                    ("positive_rate", base.positive_rate),
                ):
                    if value is not None:
                        fam.baseline.add_metric([*labels, stat], float(value))
                if base.auc is not None:
                    fam.auc_baseline.add_metric(labels, float(base.auc))
            role = roles.get(vi.version)
            if role is None:
                continue
            fam.serving.add_metric([*labels, mode, role], 1.0)
            if vi.drift is not None:
                for feature, psi in vi.drift.psi().items():
                    if psi is not None:
                        fam.psi.add_metric([*labels, feature], psi)
            auc = vi.auc.value()
            if auc is not None:
                fam.auc.add_metric(labels, auc)
        if active is not None:
            labels = [model.name, active]
            fam.guardrail.add_metric(labels, float(guardrail))
            fam.tools_blocked.add_metric(labels, 1.0 if tools_blocked else 0.0)
            meta = model.versions[active].metadata if active in model.versions else {}
            slo_latency = meta.get("slo_latency_seconds", model.slo_latency_seconds)
            slo_error = meta.get("slo_error_ratio", model.slo_error_ratio)
            if slo_latency is not None:
                fam.slo_latency.add_metric(labels, float(slo_latency))
            if slo_error is not None:
                fam.slo_error.add_metric(labels, float(slo_error))
