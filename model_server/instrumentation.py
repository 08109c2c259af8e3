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

Layout: this module is the public face and re-exports every name; the tunables and label constants live in
:mod:`model_server.instrument_config`, the per-request state in :mod:`model_server.recording` and the
collector with its metric families in :mod:`model_server.exposition`.
"""

from __future__ import annotations

from model_server.exposition import ServingMetrics
from model_server.instrument_config import (
    DEFAULT_LATENCY_BUCKETS,
    DEFAULT_SCORE_BUCKETS,
    DEFAULT_TOOL_NAMES,
    EXTRA_FEATURE_LABEL,
    OTHER_TOOL_LABEL,
    BaselineLike,
    InstrumentationConfig,
)
from model_server.instrument_config import FeatureBaselineLike as FeatureBaselineLike
from model_server.recording import InputCheck, ModelInstruments, VersionInstruments

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
