"""The metric contract as exported by ServingMetrics, parsed back with prometheus_client's parser."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import roc_auc_score

from model_registry import compute_baseline
from model_server.instrumentation import EXTRA_FEATURE_LABEL, InstrumentationConfig, ServingMetrics
from model_server.toxicity import LexiconToxicity, ToxicityClassifier

NAMES = ["a", "b", "c"]
Setup = tuple[CollectorRegistry, ServingMetrics, np.ndarray]
META = {
    "slo_latency_seconds": 0.3,
    "slo_error_ratio": 0.02,
    "latency_buckets": [0.1, 0.5, 1.0],
    "feature_names": NAMES,
}


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float | None:
    matches = [v for lab, v in found.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(matches) <= 1, f"{name}{labels} is ambiguous: {matches}"
    return matches[0] if matches else None


@pytest.fixture
def setup() -> Setup:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    scores = 1 / (1 + np.exp(-X[:, 0]))
    y = (rng.random(2000) < scores).astype(int)
    baseline = compute_baseline(X, scores, y, NAMES)
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry, InstrumentationConfig(psi_window=200, psi_min_samples=50))
    model = metrics.model("m")
    model.version("v1", baseline=baseline, metadata=META)  # a frozen Baseline fits BaselineLike
    model.version("v2", baseline=baseline, metadata=META)
    model.set_serving(active="v1", traffic={"v1": 100.0}, mode="normal", guardrail_level=0)
    return registry, metrics, X


def test_whole_contract_is_exported_and_parses(setup: Setup) -> None:
    registry, metrics, X = setup
    v1 = metrics.model("m").version("v1")
    for row in X[:100]:
        check = v1.check_input(dict(zip(NAMES, row.tolist(), strict=True)))
        v1.observe(check.row, 0.7, 0.05, request_id=None)
    v1.observe_output(toxic=True)
    found = samples(registry)
    for name in [
        "model_request_duration_seconds_bucket",
        "model_request_duration_seconds_count",
        "model_requests_total",
        "model_prediction_score_bucket",
        "model_prediction_baseline",
        "model_feature_psi",
        "model_input_problems_total",
        "model_auc_baseline",
        "model_labeled_samples_total",
        "model_outputs_total",
        "model_toxic_outputs_total",
        "model_guardrail_level",
        "model_tools_blocked",
        "model_serving_info",
        "model_traffic_weight",
        "model_slo_latency_seconds",
        "model_slo_error_ratio",
    ]:
        assert name in found, name
        assert all(lab["model"] == "m" and lab["version"] in ("v1", "v2") for lab, _ in found[name]), name
    assert value(found, "model_requests_total", version="v1", outcome="ok") == 100
    assert value(found, "model_requests_total", version="v1", outcome="error") == 0
    assert value(found, "model_slo_latency_seconds") == 0.3
    assert value(found, "model_slo_error_ratio") == 0.02
    assert value(found, "model_traffic_weight", version="v1") == 1.0
    assert value(found, "model_traffic_weight", version="v2") == 0.0
    assert value(found, "model_toxic_outputs_total", version="v1") == 1
    assert len(found["model_feature_psi"]) == 3  # v1 only: v2 is not serving
    assert value(found, "model_prediction_baseline", version="v1", stat="positive_rate") is not None


def test_latency_buckets_include_the_slo_with_le_semantics(setup: Setup) -> None:
    registry, metrics, _ = setup
    v1 = metrics.model("m").version("v1")
    for duration in (0.1, 0.3, 0.31, 2.0):
        v1.observe(None, None, duration)
    found = samples(registry)
    buckets = {
        lab["le"]: v for lab, v in found["model_request_duration_seconds_bucket"] if lab["version"] == "v1"
    }
    assert buckets == {"0.1": 1, "0.3": 2, "0.5": 3, "1.0": 3, "+Inf": 4}
    assert value(found, "model_request_duration_seconds_sum", version="v1") == pytest.approx(2.71)


def test_data_quality_counts_each_kind(setup: Setup) -> None:
    registry, metrics, _ = setup
    v1 = metrics.model("m").version("v1")
    assert v1.check_input({"a": 0.1, "b": 0, "c": -0.2}).problems == []
    check = v1.check_input({"a": None, "b": 1e6, "zzz": 1})  # c missing, zzz extra
    assert sorted(check.problems) == sorted(
        [("a", "null"), ("b", "out_of_range"), ("c", "schema"), (EXTRA_FEATURE_LABEL, "schema")]
    )
    assert math.isnan(check.row[0]) and check.row[1] == 1e6
    nan_check = v1.check_input({"a": float("nan"), "b": "1.0", "c": True})
    assert sorted(nan_check.problems) == [("a", "null"), ("b", "schema"), ("c", "schema")]
    assert nan_check.schema_errors == ["b", "c"]
    found = samples(registry)
    expected = {
        ("a", "null"): 2,
        ("b", "out_of_range"): 1,
        ("c", "schema"): 2,
        ("b", "schema"): 1,
        (EXTRA_FEATURE_LABEL, "schema"): 1,
    }
    for lab, count in found["model_input_problems_total"]:
        if lab["version"] == "v2":
            assert count == 0
            continue
        assert count == expected.get((lab["feature"], lab["kind"]), 0), lab


def test_online_auc_from_labels_matches_sklearn(setup: Setup) -> None:
    registry, metrics, _ = setup
    model = metrics.model("m")
    v1 = model.version("v1")
    rng = np.random.default_rng(7)
    scores = rng.random(300)
    labels = (rng.random(300) < scores).astype(int)
    for i, s in enumerate(scores):
        v1.observe(None, float(s), 0.01, request_id=f"r{i}")
    for i in range(0, 300, 2):  # only every other prediction gets a label
        assert model.record_label(f"r{i}", int(labels[i]))
    assert not model.record_label("never-seen", 1)
    assert not model.record_label("r0", 1)  # already joined
    found = samples(registry)
    assert value(found, "model_labeled_samples_total", version="v1") == 150
    assert value(found, "model_auc", version="v1") == pytest.approx(roc_auc_score(labels[::2], scores[::2]))


def test_only_serving_versions_export_window_gauges(setup: Setup) -> None:
    registry, metrics, X = setup
    model = metrics.model("m")
    for name in ("v1", "v2"):
        vi = model.version(name)
        for row in X[:60]:
            vi.observe(row, 0.5, 0.01)
    model.set_serving(
        active="v1", traffic={"v1": 70.0, "v2": 30.0}, mode="fallback", guardrail_level=2, tools_blocked=True
    )
    found = samples(registry)
    roles = {(lab["version"], lab["role"], lab["mode"]) for lab, _ in found["model_serving_info"]}
    assert roles == {("v1", "active", "fallback"), ("v2", "split", "fallback")}
    assert {lab["version"] for lab, _ in found["model_feature_psi"]} == {"v1", "v2"}
    assert value(found, "model_traffic_weight", version="v2") == pytest.approx(0.3)
    assert found["model_guardrail_level"] == [({"model": "m", "version": "v1"}, 2.0)]
    assert found["model_tools_blocked"] == [({"model": "m", "version": "v1"}, 1.0)]
    model.set_serving(active="v1", traffic={"v1": 100.0})  # v2 rolled out of traffic
    found = samples(registry)
    assert {lab["version"] for lab, _ in found["model_feature_psi"]} == {"v1"}
    assert {lab["version"] for lab, _ in found["model_serving_info"]} == {"v1"}
    assert value(found, "model_requests_total", version="v2", outcome="ok") == 60  # counters stay


def test_tool_calls_are_counted_by_outcome_with_a_bounded_tool_label() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry, InstrumentationConfig(tool_names=frozenset({"code_exec", "search"})))
    model = metrics.model("llm")
    v1 = model.version("v1")
    model.set_serving(active="v1", traffic={"v1": 100.0})
    assert "model_tool_calls_total" not in samples(registry)  # nothing before the first tool call
    v1.observe_tools()
    v1.observe_tools(allowed=["search", "unknown_a"], refused=["code_exec"])
    v1.observe_tools(allowed=["unknown_b"], refused=["code_exec", "unknown_c"])
    found = samples(registry)
    counts = {(lab["tool"], lab["outcome"]): v for lab, v in found["model_tool_calls_total"]}
    assert counts == {
        ("search", "allowed"): 1,
        ("_other", "allowed"): 2,
        ("code_exec", "refused"): 2,
        ("_other", "refused"): 1,
    }
    assert all(lab["model"] == "llm" and lab["version"] == "v1" for lab, _ in found["model_tool_calls_total"])


def test_registering_twice_on_one_registry_is_refused() -> None:
    registry = CollectorRegistry()
    ServingMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        ServingMetrics(registry)


def test_lexicon_toxicity_is_a_classifier() -> None:
    lexicon = LexiconToxicity()
    assert isinstance(lexicon, ToxicityClassifier)
    assert lexicon.is_toxic("You idiot, that is a stupid question.")
    assert not lexicon.is_toxic("Thanks for asking, here is a helpful answer.")
    assert lexicon.score("") == 0.0
    with pytest.raises(ValueError):
        LexiconToxicity(words=[])
