"""Online AUC from delayed labels, joined to predictions by request id.

Predictions that may receive a label wait in a bounded pending table (oldest evicted first, and anything
older than ``ttl_seconds`` dropped), so memory stays bounded when labels never come. A label moves its
prediction into a sliding window of the last ``window`` labelled (score, label) pairs. AUC is the
Mann-Whitney rank statistic over that window (ties get average ranks), ``O(n log n)``; it is recomputed
only when labels have arrived since the last read, never per request. It is ``None`` while the window
holds only one class.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

__all__ = ["LabelJoin", "OnlineAUC", "PendingPredictions", "rank_auc"]

T = TypeVar("T")


def rank_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC via the rank-sum statistic; ``None`` if either class is absent."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # average ranks over runs of tied scores
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    rank_sum = float(ranks[labels].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


@dataclass(frozen=True)
class LabelJoin(Generic[T]):
    """A pending prediction found for a label: who made it and its score."""

    owner: T
    score: float


class PendingPredictions(Generic[T]):
    """request id → (owner, score, time), bounded by size and age. Not thread-safe: lock outside."""

    def __init__(
        self,
        *,
        max_pending: int = 100_000,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_pending < 1 or ttl_seconds <= 0:
            raise ValueError("need max_pending >= 1 and ttl_seconds > 0")
        self.max_pending = max_pending
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[str, tuple[T, float, float]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, request_id: str, owner: T, score: float) -> None:
        now = self._clock()
        items = self._items
        if request_id in items:
            del items[request_id]
        items[request_id] = (owner, score, now)
        self._expire(now)
        while len(items) > self.max_pending:
            items.popitem(last=False)
            self.evicted += 1

    def pop(self, request_id: str) -> LabelJoin[T] | None:
        self._expire(self._clock())
        item = self._items.pop(request_id, None)
        return None if item is None else LabelJoin(item[0], item[1])

    def _expire(self, now: float) -> None:
        items = self._items
        cutoff = now - self.ttl_seconds
        while items:
            _, (_, _, at) = next(iter(items.items()))
            if at >= cutoff:
                break
            items.popitem(last=False)
            self.evicted += 1


class OnlineAUC:
    """AUC over the last ``window`` labelled predictions. Not thread-safe: lock outside."""

    def __init__(self, window: int = 2000) -> None:
        if window < 2:
            raise ValueError("the AUC window needs at least 2 samples")
        self.window = window
        self._scores: deque[float] = deque(maxlen=window)
        self._labels: deque[int] = deque(maxlen=window)
        self._auc: float | None = None
        self._dirty = False
        self.labeled = 0

    def add(self, score: float, label: int) -> None:
        self._scores.append(float(score))
        self._labels.append(1 if label else 0)
        self.labeled += 1
        self._dirty = True

    def __len__(self) -> int:
        return len(self._scores)

    def value(self) -> float | None:
        if self._dirty:
            self._auc = rank_auc(np.fromiter(self._scores, float), np.fromiter(self._labels, int))
            self._dirty = False
        return self._auc
