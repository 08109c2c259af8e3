"""Online AUC against scikit-learn on fixed data; the pending join is bounded by size and age."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from model_server.auc import OnlineAUC, PendingPredictions, rank_auc


def test_rank_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=500)
    scores = np.round(rng.random(500) * 0.5 + labels * 0.3, 1)  # coarse rounding: many ties
    assert rank_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_rank_auc_one_class_is_none() -> None:
    assert rank_auc(np.array([0.1, 0.9]), np.array([1, 1])) is None


def test_window_keeps_only_the_last_labels() -> None:
    rng = np.random.default_rng(1)
    auc = OnlineAUC(window=300)
    labels = rng.integers(0, 2, size=1000)
    good = rng.random(1000) * 0.4 + labels * 0.6
    bad = rng.random(1000)
    scores = np.concatenate([good[:700], bad[700:]])
    for s, y in zip(scores, labels, strict=True):
        auc.add(float(s), int(y))
    assert len(auc) == 300 and auc.labeled == 1000
    assert auc.value() == pytest.approx(roc_auc_score(labels[-300:], scores[-300:]), abs=1e-12)


def test_pending_predictions_bounded_by_size_and_ttl() -> None:
    now = [0.0]
    pending: PendingPredictions[str] = PendingPredictions(max_pending=3, ttl_seconds=10, clock=lambda: now[0])
    for i in range(5):
        pending.add(f"r{i}", "v1", i / 10)
    assert len(pending) == 3 and pending.pop("r0") is None  # oldest evicted by size
    joined = pending.pop("r4")
    assert joined is not None and joined.owner == "v1" and joined.score == pytest.approx(0.4)
    now[0] = 11.0
    assert pending.pop("r3") is None  # expired
    assert len(pending) == 0 and pending.evicted == 4


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        OnlineAUC(window=1)
    with pytest.raises(ValueError):
        PendingPredictions(max_pending=0)
