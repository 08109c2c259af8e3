"""Population Stability Index per feature over a sliding window of recent inputs.

PSI of one feature is ``sum_i (a_i - e_i) * ln(a_i / e_i)`` over the baseline's bins, where ``e_i`` is the
baseline proportion of bin ``i`` and ``a_i`` the proportion of the live window in it.

Design choices (documented because rules depend on them):

* **Bins** come from the version's registered baseline (quantile edges). The outer bins are open-ended, so a
  value below the lowest edge lands in the first bin and one above the highest in the last. A value equal to
  an inner edge belongs to the bin above it (``[a, b)``), like ``numpy.digitize``.
* **Epsilon**: an empty bin would make ``ln(0)`` blow up, so both proportions are floored at ``epsilon``
  (default ``1e-4``) before the sum. A bin that is empty in the baseline *and* the window contributes 0.
* **Sliding window**: a ring buffer keeps the bin index of the last ``window`` values per feature, and
  per-bin counts are updated as values enter and leave, so the work per input is a binary search per
  feature (``O(features · log bins)``), never a pass over the window. Inputs are binned in small batches
  (``flush_every``) with numpy, and PSI is evaluated from the counts (``O(features · bins)``) when read or
  when a batch is flushed — independent of the window size.
* **Warm-up**: before the window is full, PSI is computed over the values that are there. Below
  ``min_samples`` values of a feature, its PSI is ``None`` (not exported): with ``n`` samples and ``k`` bins
  sampling noise alone gives PSI ≈ (k-1)/n, so early values would page on healthy traffic.
* **Missing values** (None/NaN) are not binned; they are data-quality problems, counted elsewhere.

Thresholds (0.1 watch, 0.2 act) belong to the alert rules; :class:`PSIThresholds` only carries them for
callers that want to classify a value locally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_EPSILON", "FeatureDriftWindow", "PSIThresholds", "inner_edges", "psi_from_proportions"]

DEFAULT_EPSILON = 1e-4


@dataclass(frozen=True)
class PSIThresholds:
    """Conventional PSI bands: below ``watch`` stable, ``watch``..``act`` watch, above ``act`` act."""

    watch: float = 0.1
    act: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.watch < self.act:
            raise ValueError(f"PSI thresholds need 0 < watch < act, got watch={self.watch} act={self.act}")

    def classify(self, psi: float) -> str:
        if psi > self.act:
            return "act"
        if psi > self.watch:
            return "watch"
        return "stable"


def inner_edges(bin_edges: Sequence[float], n_bins: int) -> np.ndarray:
    """The inner cut points of a baseline's bins.

    Accepts either the full edge list (``n_bins + 1`` values, outermost being the baseline min/max, which
    are treated as open-ended) or only the inner cut points (``n_bins - 1`` values).
    """
    edges = np.asarray(list(bin_edges), dtype=float)
    if n_bins < 1:
        raise ValueError("a feature baseline needs at least one bin")
    if len(edges) == n_bins + 1:
        edges = edges[1:-1]
    elif len(edges) != n_bins - 1:
        raise ValueError(
            f"{len(edges)} bin edges do not fit {n_bins} proportions (expected {n_bins + 1} or {n_bins - 1})"
        )
    if np.any(np.isnan(edges)) or np.any(np.diff(edges) < 0):
        raise ValueError("bin edges must be sorted numbers")
    return edges


def psi_from_proportions(actual: np.ndarray, expected: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> float:
    """PSI of two proportion vectors, each floored at ``epsilon``."""
    a = np.maximum(np.asarray(actual, dtype=float), epsilon)
    e = np.maximum(np.asarray(expected, dtype=float), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


class FeatureDriftWindow:
    """Sliding-window PSI for many features against their baseline bins. Not thread-safe: lock outside."""

    def __init__(
        self,
        feature_names: Sequence[str],
        bin_edges: Sequence[Sequence[float]],
        proportions: Sequence[Sequence[float]],
        *,
        window: int = 1000,
        epsilon: float = DEFAULT_EPSILON,
        min_samples: int = 100,
        flush_every: int = 32,
    ) -> None:
        if not (len(feature_names) == len(bin_edges) == len(proportions)) or not feature_names:
            raise ValueError("feature_names, bin_edges and proportions must be non-empty and of equal length")
        if window < 1 or not 0 < epsilon < 1 or min_samples < 1:
            raise ValueError("need window >= 1, 0 < epsilon < 1 and min_samples >= 1")
        self.feature_names = list(feature_names)
        self.window = window
        self.epsilon = epsilon
        self.min_samples = min_samples
        self._flush_every = max(1, min(flush_every, window))
        n_features = len(self.feature_names)
        self._edges = [inner_edges(e, len(p)) for e, p in zip(bin_edges, proportions, strict=True)]
        self._bins = max(len(p) for p in proportions)
        # Expected proportions padded to a rectangle; padded bins never receive counts, so after the
        # epsilon floor they contribute (eps - eps) * ln(1) = 0.
        self._expected = np.zeros((n_features, self._bins))
        for i, props in enumerate(proportions):
            self._expected[i, : len(props)] = props
        self._log_expected = np.log(np.maximum(self._expected, epsilon))
        self._ring = np.full((window, n_features), -1, dtype=np.int32)
        self._pos = 0
        self._counts = np.zeros((n_features, self._bins), dtype=np.int64)
        self._offsets = np.arange(n_features, dtype=np.int64) * self._bins
        self._pending = np.empty((self._flush_every, n_features))
        self._n_pending = 0
        self._psi: np.ndarray = np.full(n_features, np.nan)
        self._dirty = False
        self.observed = 0

    def add(self, row: np.ndarray) -> None:
        """Queue one input row (floats in feature order, NaN for missing); binned on the next flush."""
        self._pending[self._n_pending] = row
        self._n_pending += 1
        self.observed += 1
        if self._n_pending == self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Bin the queued rows, slide them into the ring and update the per-bin counts."""
        n = self._n_pending
        if n == 0:
            return
        batch = self._pending[:n]
        bins = np.empty((n, len(self._edges)), dtype=np.int32)
        for f, edges in enumerate(self._edges):
            bins[:, f] = np.searchsorted(edges, batch[:, f], side="right")
        bins[np.isnan(batch)] = -1
        slots = (self._pos + np.arange(n)) % self.window
        leaving = self._ring[slots]
        self._ring[slots] = bins
        self._pos = (self._pos + n) % self.window
        self._n_pending = 0
        size = self._counts.size
        flat_in = (bins + self._offsets)[bins >= 0]
        flat_out = (leaving + self._offsets)[leaving >= 0]
        delta = np.bincount(flat_in, minlength=size) - np.bincount(flat_out, minlength=size)
        self._counts += delta.reshape(self._counts.shape)
        self._dirty = True

    def counts(self) -> np.ndarray:
        """Per-feature, per-bin counts of the current window (a copy)."""
        self.flush()
        return self._counts.copy()

    def psi(self) -> dict[str, float | None]:
        """PSI per feature; ``None`` for features with fewer than ``min_samples`` values in the window."""
        self.flush()
        if self._dirty:
            totals = self._counts.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                actual = self._counts / np.maximum(totals, 1)[:, None]
            actual = np.maximum(actual, self.epsilon)
            expected = np.maximum(self._expected, self.epsilon)
            values = np.sum((actual - expected) * (np.log(actual) - self._log_expected), axis=1)
            values[totals < self.min_samples] = np.nan
            self._psi = values
            self._dirty = False
        return {
            name: (None if math.isnan(v) else float(v))
            for name, v in zip(self.feature_names, self._psi.tolist(), strict=True)
        }
