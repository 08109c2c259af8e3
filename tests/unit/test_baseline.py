"""Baseline statistics against independent numpy / scikit-learn computations on fixed data."""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from model_registry import Baseline, FeatureBaseline, RegistryError, compute_baseline


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 1000
    X = np.column_stack(
        [
            rng.normal(10.0, 2.0, n),  # continuous
            rng.integers(0, 2, n).astype(float),  # binary: heavy ties
            rng.exponential(1.0, n),  # skewed
        ]
    )
    y = rng.integers(0, 2, n)
    scores = np.clip(0.3 * y + rng.uniform(0.0, 0.7, n), 0.0, 1.0)
    return X, scores, y


NAMES = ["income", "is_new", "wait"]


def test_score_statistics_match_numpy_and_sklearn(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    X, scores, y = data
    b = compute_baseline(X, scores, y, NAMES)
    assert b.n_samples == 1000
    assert b.auc == pytest.approx(roc_auc_score(y, scores))
    assert b.score_mean == pytest.approx(float(np.mean(scores)))
    assert b.score_std == pytest.approx(float(np.std(scores)))
    assert b.positive_rate == pytest.approx(float(np.sum(scores >= 0.5)) / 1000)
    expected_hist, expected_edges = np.histogram(scores, bins=10, range=(0.0, 1.0))
    assert b.score_edges == pytest.approx(list(expected_edges))
    assert b.score_histogram == pytest.approx(list(expected_hist / 1000))
    assert sum(b.score_histogram) == pytest.approx(1.0)


def test_feature_bins_are_baseline_quantiles_with_left_closed_bins(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, scores, y = data
    b = compute_baseline(X, scores, y, NAMES, bins=10)
    income = b.feature("income")
    expected_edges = np.quantile(X[:, 0], np.linspace(0.1, 0.9, 9))
    assert income.edges == pytest.approx(list(expected_edges))
    # independent count of (-inf, e0), [e0, e1), ..., [e8, inf)
    bounds = [-np.inf, *expected_edges, np.inf]
    expected_props = [np.mean((X[:, 0] >= lo) & (X[:, 0] < hi)) for lo, hi in pairwise(bounds)]
    assert income.proportions == pytest.approx(expected_props)
    assert income.min == pytest.approx(X[:, 0].min())
    assert income.max == pytest.approx(X[:, 0].max())
    assert income.mean == pytest.approx(X[:, 0].mean())
    assert income.std == pytest.approx(X[:, 0].std())
    assert income.null_rate == 0.0


def test_tied_feature_edges_are_deduplicated_and_no_bin_is_below_the_minimum(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, scores, y = data
    is_new = compute_baseline(X, scores, y, NAMES).feature("is_new")
    # quantiles of a 0/1 column are 0, something in between, or 1; duplicates and the minimum are dropped
    assert len(is_new.edges) == len(set(is_new.edges))
    assert all(e > 0.0 for e in is_new.edges)
    assert is_new.proportions[0] == pytest.approx(np.mean(X[:, 1] == 0))
    assert sum(is_new.proportions) == pytest.approx(1.0)
    assert is_new.n_bins == len(is_new.edges) + 1


def test_bin_index_and_counts_use_the_same_rule_as_the_baseline(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, scores, y = data
    wait = compute_baseline(X, scores, y, NAMES).feature("wait")
    assert wait.bin_index(-1e9) == 0
    assert wait.bin_index(1e9) == wait.n_bins - 1
    assert wait.bin_index(wait.edges[0]) == 1  # left-closed: an edge value belongs to the bin above
    counts = wait.bin_counts(np.concatenate([X[:, 2], [np.nan, np.inf]]))
    assert counts.sum() == 1000  # NaN/inf are not binned
    assert list(counts / 1000) == pytest.approx(wait.proportions)


def test_nan_values_are_ignored_and_counted_as_null_rate() -> None:
    X = np.array([[1.0], [np.nan], [3.0], [4.0]])
    b = compute_baseline(X, np.array([0.1, 0.2, 0.8, 0.9]), None, ["f"], bins=2)
    f = b.feature("f")
    assert f.null_rate == pytest.approx(0.25)
    assert (f.min, f.max) == (1.0, 4.0)
    assert f.edges == pytest.approx([3.0])  # median of [1, 3, 4]
    assert f.proportions == pytest.approx([1 / 3, 2 / 3])
    assert b.auc is None


def test_round_trip_through_json(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    X, scores, y = data
    b = compute_baseline(X, scores, y, NAMES)
    again = Baseline.from_dict(json.loads(json.dumps(b.to_dict())))
    assert again == b
    assert again.feature_names == NAMES


def test_invalid_input_names_every_problem() -> None:
    with pytest.raises(RegistryError) as info:
        compute_baseline(np.zeros((5, 2)), np.array([0.1, 0.2, 0.3]), None, ["a", "a", "b"], bins=1)
    text = " | ".join(info.value.problems)
    assert "2 columns but 3 feature_names" in text
    assert "feature_names must be unique" in text
    assert "scores has 3 values but X has 5 rows" in text
    assert "bins must be an integer >= 2" in text


def test_single_class_labels_are_refused_rather_than_giving_a_meaningless_auc() -> None:
    with pytest.raises(RegistryError) as info:
        compute_baseline(np.ones((4, 1)), np.array([0.1, 0.2, 0.3, 0.4]), np.ones(4), ["a"])
    assert any("exactly two classes" in p for p in info.value.problems)


def test_feature_without_finite_values_is_refused() -> None:
    with pytest.raises(RegistryError, match="feature 'a' has no finite values"):
        compute_baseline(np.full((3, 1), np.nan), np.array([0.1, 0.2, 0.3]), None, ["a"])


def test_from_dict_rejects_malformed_baselines() -> None:
    with pytest.raises(RegistryError, match="missing key 'score_mean'"):
        Baseline.from_dict({"n_samples": 3})
    with pytest.raises(RegistryError, match="3 edges need 4 proportions"):
        FeatureBaseline("f", [1.0, 2.0, 3.0], [0.5, 0.5], 0.0, 4.0, 2.0, 1.0)
    with pytest.raises(RegistryError, match="strictly increasing"):
        FeatureBaseline("f", [2.0, 1.0], [0.3, 0.3, 0.4], 0.0, 4.0, 2.0, 1.0)
