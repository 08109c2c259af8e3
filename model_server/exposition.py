"""Scrape-time export of the metric contract: the collector and the metric families it builds.

:class:`ServingMetrics` is the one collector registered per process; on every scrape it snapshots each
model's state (:mod:`model_server.recording`) under its lock and turns it into the contract's families,
following the export rules listed in :mod:`model_server.instrumentation`. Kept apart from the recording
state so the hot path and the exposition format can change independently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from model_server.instrument_config import DEFAULT_LATENCY_BUCKETS, InstrumentationConfig
from model_server.recording import ModelInstruments
from model_server.toxicity import LexiconToxicity, ToxicityClassifier

__all__ = ["ServingMetrics"]


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
