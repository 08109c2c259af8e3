"""Pure registry rules: the last-known-good choice, metadata conventions, traffic weights, names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from model_registry import VersionInfo
from model_registry.state import last_known_good
from model_registry.validation import metadata_problems, name_problems, weights_problems

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def v(name: str, seq: int, *, served: bool = False, unhealthy: bool = False) -> VersionInfo:
    return VersionInfo("m", name, f"/a/{name}", T0, seq=seq, served_healthy=served, unhealthy=unhealthy)


@pytest.mark.parametrize(
    ("versions", "active", "expected"),
    [
        ([v("v1", 1, served=True), v("v2", 2, served=True), v("v3", 3)], "v3", "v2"),  # newest served
        ([v("v1", 1, served=True), v("v2", 2, served=True, unhealthy=True), v("v3", 3)], "v3", "v1"),
        ([v("v1", 1, served=True), v("v2", 2)], "v2", "v1"),  # v2 never served
        ([v("v1", 1, served=True), v("v2", 2, served=True)], "v2", "v1"),  # never the active
        ([v("v2", 5, served=True), v("v1", 9, served=True), v("v3", 10)], "v3", "v1"),  # by registration
        ([v("v1", 1, served=True, unhealthy=True), v("v2", 2)], "v2", None),
        ([v("v1", 1)], "v1", None),
        ([v("v1", 1, served=True)], None, "v1"),
    ],
)
def test_last_known_good_selection(
    versions: list[VersionInfo], active: str | None, expected: str | None
) -> None:
    assert last_known_good(versions, active) == expected


def test_metadata_conventions_accept_a_complete_valid_set() -> None:
    meta = {
        "slo_latency_seconds": 0.25,
        "slo_error_ratio": 0.01,
        "latency_buckets": [0.05, 0.1, 0.25, 0.5, 1.0],
        "kind": "classifier",
        "feature_names": ["a", "b"],
        "owner": "team-risk",
    }
    assert metadata_problems(meta, None) == []


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({"slo_latency_seconds": 0}, "slo_latency_seconds must be a number > 0"),
        ({"slo_latency_seconds": True}, "slo_latency_seconds must be a number > 0"),
        ({"slo_error_ratio": 1.5}, "slo_error_ratio must be a number in (0, 1)"),
        ({"latency_buckets": [0.1, 0.05]}, "strictly increasing"),
        ({"latency_buckets": []}, "non-empty list"),
        ({"slo_latency_seconds": 0.3, "latency_buckets": [0.1, 0.5]}, "must include slo_latency_seconds"),
        ({"kind": "regressor"}, "kind must be one of classifier, llm"),
        ({"feature_names": ["a", "a"]}, "feature_names must be unique"),
        ({"feature_names": "a,b"}, "list of non-empty strings"),
        ({"blob": {1, 2}}, "JSON-serialisable"),
    ],
)
def test_metadata_problems_name_the_key(meta: dict[str, object], fragment: str) -> None:
    problems = metadata_problems(meta, None)
    assert any(fragment in p for p in problems), problems


def test_metadata_reports_every_problem_at_once() -> None:
    problems = metadata_problems({"slo_error_ratio": -1, "kind": "x", "slo_latency_seconds": "fast"}, None)
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("weights", "fragment"),
    [
        ({}, "non-empty"),
        ({"v1": 50, "v2": 40}, "must sum to 100, got 90"),
        ({"v1": 150, "v2": -50}, "between 0 and 100"),
        ({"v1": float("nan"), "v2": 100}, "between 0 and 100"),
        ({"bad name": 100}, "not a valid name"),
    ],
)
def test_weights_problems(weights: dict[str, float], fragment: str) -> None:
    assert any(fragment in p for p in weights_problems(weights))


def test_weights_accept_floats_summing_to_100() -> None:
    assert weights_problems({"v1": 33.3, "v2": 33.3, "v3": 33.4}) == []


@pytest.mark.parametrize("name", ["", "a b", "v1=50", "-x", "x" * 129, None])
def test_invalid_names(name: object) -> None:
    assert name_problems("version", name)


@pytest.mark.parametrize("name", ["v1", "fraud-model", "2024.06.01+rc1", "ns:model_a"])
def test_valid_names(name: str) -> None:
    assert name_problems("version", name) == []
