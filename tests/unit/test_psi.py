"""PSI of the sliding window against independent numpy computations on fixed data."""

from __future__ import annotations

import numpy as np
import pytest

from model_server.psi import FeatureDriftWindow, PSIThresholds, inner_edges, psi_from_proportions

EPS = 1e-4


def reference_psi(values: np.ndarray, edges: np.ndarray, expected: np.ndarray, eps: float = EPS) -> float:
    """Straight from the definition: histogram over open-ended bins, floor both sides at eps."""
    values = values[~np.isnan(values)]
    counts, _ = np.histogram(values, bins=np.concatenate(([-np.inf], edges, [np.inf])))
    actual = np.maximum(counts / counts.sum(), eps)
    exp = np.maximum(expected, eps)
    return float(np.sum((actual - exp) * np.log(actual / exp)))


def make_baseline(rng: np.random.Generator, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    ref = rng.normal(size=5000)
    edges = np.quantile(ref, np.arange(1, bins) / bins)
    counts, _ = np.histogram(ref, bins=np.concatenate(([-np.inf], edges, [np.inf])))
    return edges, counts / counts.sum()


def test_full_window_slides_and_matches_reference() -> None:
    rng = np.random.default_rng(1)
    edges, props = make_baseline(rng)
    window = FeatureDriftWindow(
        ["x"], [list(edges)], [list(props)], window=1000, min_samples=10, flush_every=32
    )
    stream = np.concatenate([rng.normal(size=1500), rng.normal(loc=1.0, size=1000)])
    for i, value in enumerate(stream):
        window.add(np.array([value]))
        if i in (999, 1700, 2499):
            got = window.psi()["x"]
            assert got == pytest.approx(reference_psi(stream[i - 999 : i + 1], edges, props), rel=1e-9)
    assert window.counts().sum() == 1000
    # the last 1000 values are all shifted by one sigma: clearly past the act threshold
    assert PSIThresholds().classify(window.psi()["x"] or 0.0) == "act"


def test_window_not_yet_full_uses_what_is_there() -> None:
    rng = np.random.default_rng(2)
    edges, props = make_baseline(rng)
    window = FeatureDriftWindow(["x"], [list(edges)], [list(props)], window=1000, min_samples=100)
    values = rng.normal(loc=0.3, size=300)
    for v in values:
        window.add(np.array([v]))
    assert window.psi()["x"] == pytest.approx(reference_psi(values, edges, props), rel=1e-9)


def test_below_min_samples_is_not_reported() -> None:
    rng = np.random.default_rng(3)
    edges, props = make_baseline(rng)
    window = FeatureDriftWindow(["x"], [list(edges)], [list(props)], window=1000, min_samples=100)
    for v in rng.normal(size=99):
        window.add(np.array([v]))
    assert window.psi() == {"x": None}
    window.add(np.array([0.0]))
    assert window.psi()["x"] is not None


def test_empty_bins_use_epsilon_on_both_sides() -> None:
    edges = np.array([1.0, 2.0, 3.0])
    props = np.array([0.5, 0.5, 0.0, 0.0])  # two bins empty in the baseline
    window = FeatureDriftWindow(["x"], [list(edges)], [list(props)], window=50, min_samples=1)
    values = np.full(50, 0.5)  # every live value in bin 0; bins 1..3 empty in the window
    for v in values:
        window.add(np.array([v]))
    got = window.psi()["x"]
    assert got is not None and np.isfinite(got)
    assert got == pytest.approx(reference_psi(values, edges, props), rel=1e-12)
    # by hand: bin0 (1-.5)ln2, bin1 (eps-.5)ln(eps/.5), bins 2,3 empty on both sides contribute 0
    by_hand = 0.5 * np.log(2) + (EPS - 0.5) * np.log(EPS / 0.5)
    assert got == pytest.approx(by_hand, rel=1e-12)


def test_values_on_an_edge_go_to_the_upper_bin_and_nan_is_skipped() -> None:
    edges = np.array([1.0, 2.0])
    props = np.array([0.2, 0.3, 0.5])
    window = FeatureDriftWindow(["x"], [list(edges)], [list(props)], window=10, min_samples=1)
    for v in [1.0, 2.0, 2.0, float("nan"), -5.0, 99.0]:
        window.add(np.array([v]))
    # -5 -> bin 0; 1.0 -> bin 1; 2.0, 2.0, 99 -> bin 2; NaN not counted
    assert window.counts().tolist() == [[1, 1, 3]]


def test_drift_on_one_feature_moves_only_its_psi() -> None:
    rng = np.random.default_rng(4)
    (e1, p1), (e2, p2) = make_baseline(rng), make_baseline(rng)
    window = FeatureDriftWindow(
        ["a", "b"], [list(e1), list(e2)], [list(p1), list(p2)], window=500, min_samples=50
    )
    for _ in range(500):
        window.add(np.array([rng.normal(), rng.normal()]))
    before = window.psi()
    for _ in range(500):
        window.add(np.array([rng.normal(loc=2.0), rng.normal()]))
    after = window.psi()
    assert before["a"] is not None and after["a"] is not None and after["b"] is not None
    assert before["a"] < 0.1 and after["a"] > 1.0
    assert after["b"] < 0.1


def test_features_with_different_bin_counts() -> None:
    rng = np.random.default_rng(5)
    e1, p1 = make_baseline(rng, bins=10)
    e2, p2 = make_baseline(rng, bins=4)
    window = FeatureDriftWindow(
        ["a", "b"], [list(e1), list(e2)], [list(p1), list(p2)], window=200, min_samples=1
    )
    data = rng.normal(size=(200, 2))
    for row in data:
        window.add(row)
    psi = window.psi()
    assert psi["a"] == pytest.approx(reference_psi(data[:, 0], e1, p1), rel=1e-9)
    assert psi["b"] == pytest.approx(reference_psi(data[:, 1], e2, p2), rel=1e-9)


def test_edge_formats_and_bad_input() -> None:
    assert inner_edges([0.0, 1.0, 2.0, 3.0], 3).tolist() == [1.0, 2.0]  # full edges incl. min/max
    assert inner_edges([1.0, 2.0], 3).tolist() == [1.0, 2.0]  # interior only
    with pytest.raises(ValueError, match="do not fit"):
        inner_edges([1.0], 4)
    with pytest.raises(ValueError, match="sorted"):
        inner_edges([2.0, 1.0], 3)
    with pytest.raises(ValueError, match="watch < act"):
        PSIThresholds(watch=0.3, act=0.2)
    assert psi_from_proportions(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
