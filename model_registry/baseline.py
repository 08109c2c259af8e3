"""Baseline statistics of a model version, computed from its validation set at registration.

The model server compares live traffic with these numbers: PSI per feature against the feature bins, the
prediction distribution against the score statistics, online AUC against the validation AUC.

Feature bins
    ``edges`` are the *interior* cut points: the baseline quantiles at ``i/bins`` (``i = 1..bins-1``,
    numpy's linear interpolation), with equal edges deduplicated and edges ``<=`` the feature minimum
    dropped (a bin below the minimum could only ever be empty). The outer bins are open-ended, so there
    are ``len(edges) + 1`` bins: ``(-inf, e0), [e0, e1), ..., [e_last, +inf)`` -- left-closed, the numpy
    ``searchsorted(edges, x, side="right")`` rule. Use :meth:`FeatureBaseline.bin_index` /
    :meth:`FeatureBaseline.bin_counts` so live counts use exactly the same rule. ``proportions`` may
    contain zeros (heavily tied data); PSI must add an epsilon.

Score statistics
    ``score_mean``, ``score_std`` (population, ``ddof=0``), ``positive_rate`` (share of scores ``>=``
    ``threshold``, 0.5), a histogram over fixed edges ``0.0, 0.1, ..., 1.0`` (scores clipped into
    ``[0, 1]``, the last bin closed) as proportions, and ``auc`` (scikit-learn ``roc_auc_score``) when
    labels are given. NaN feature values are ignored for that feature and counted in ``null_rate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from incident_common.errors import RegistryError

if TYPE_CHECKING:  # numpy is imported where it is used: the receiver reads baselines without the ML stack
    import numpy as np

__all__ = ["SCORE_BINS", "Baseline", "FeatureBaseline", "compute_baseline"]

#: Number of fixed-width bins of the score histogram over [0, 1].
SCORE_BINS = 10


def _floats(values: Any, what: str) -> list[float]:
    if not isinstance(values, (list, tuple)):
        raise RegistryError(f"baseline: {what} must be a list of numbers, got {type(values).__name__}")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"baseline: {what} must be a list of numbers ({exc})") from None


@dataclass(frozen=True)
class FeatureBaseline:
    """Bins and range of one input feature on the validation set."""

    name: str
    edges: list[float]
    proportions: list[float]
    min: float
    max: float
    mean: float
    std: float
    null_rate: float = 0.0

    def __post_init__(self) -> None:
        if len(self.proportions) != len(self.edges) + 1:
            raise RegistryError(
                f"baseline feature {self.name!r}: {len(self.edges)} edges need {len(self.edges) + 1} "
                f"proportions, got {len(self.proportions)}"
            )
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise RegistryError(f"baseline feature {self.name!r}: edges must be strictly increasing")

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def bin_index(self, value: float) -> int:
        """The bin of one value: ``0`` below the first edge, ``len(edges)`` at or above the last."""
        import numpy as np

        return int(np.searchsorted(self.edges, value, side="right"))

    def bin_counts(self, values: np.ndarray | Sequence[float]) -> np.ndarray:
        """Counts per bin of the finite ``values`` (NaN/inf are not counted: they are data-quality issues)."""
        import numpy as np

        arr = np.asarray(values, dtype=float)
        arr = arr[np.isfinite(arr)]
        idx = np.searchsorted(np.asarray(self.edges, dtype=float), arr, side="right")
        return np.bincount(idx, minlength=self.n_bins)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "edges": list(self.edges),
            "proportions": list(self.proportions),
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "null_rate": self.null_rate,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBaseline:
        try:
            return cls(
                name=str(data["name"]),
                edges=_floats(data["edges"], "edges"),
                proportions=_floats(data["proportions"], "proportions"),
                min=float(data["min"]),
                max=float(data["max"]),
                mean=float(data["mean"]),
                std=float(data["std"]),
                null_rate=float(data.get("null_rate", 0.0)),
            )
        except KeyError as exc:
            raise RegistryError(f"baseline feature: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"baseline feature: {exc}") from None


@dataclass(frozen=True)
class Baseline:
    """Validation-set statistics of one model version (JSON via :meth:`to_dict` / :meth:`from_dict`)."""

    n_samples: int
    score_mean: float
    score_std: float
    positive_rate: float
    score_edges: list[float]
    score_histogram: list[float]
    features: list[FeatureBaseline] = field(default_factory=list)
    auc: float | None = None
    threshold: float = 0.5

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureBaseline:
        for feat in self.features:
            if feat.name == name:
                return feat
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "auc": self.auc,
            "threshold": self.threshold,
            "score_mean": self.score_mean,
            "score_std": self.score_std,
            "positive_rate": self.positive_rate,
            "score_edges": list(self.score_edges),
            "score_histogram": list(self.score_histogram),
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        if not isinstance(data, Mapping):
            raise RegistryError(f"baseline must be a JSON object, got {type(data).__name__}")
        try:
            features_raw = data.get("features", [])
            if not isinstance(features_raw, list):
                raise RegistryError("baseline: features must be a list")
            auc = data.get("auc")
            return cls(
                n_samples=int(data["n_samples"]),
                auc=None if auc is None else float(auc),
                threshold=float(data.get("threshold", 0.5)),
                score_mean=float(data["score_mean"]),
                score_std=float(data["score_std"]),
                positive_rate=float(data["positive_rate"]),
                score_edges=_floats(data["score_edges"], "score_edges"),
                score_histogram=_floats(data["score_histogram"], "score_histogram"),
                features=[FeatureBaseline.from_dict(f) for f in features_raw],
            )
        except KeyError as exc:
            raise RegistryError(f"baseline: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"baseline: {exc}") from None


def _feature_baseline(name: str, column: np.ndarray, bins: int) -> FeatureBaseline:
    import numpy as np

    finite = column[np.isfinite(column)]
    if finite.size == 0:
        raise RegistryError(f"compute_baseline: feature {name!r} has no finite values")
    lo = float(finite.min())
    quantiles = np.quantile(finite, np.arange(1, bins) / bins)
    edges = [float(e) for e in np.unique(quantiles) if e > lo]
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    return FeatureBaseline(
        name=name,
        edges=edges,
        proportions=[float(c) for c in counts / finite.size],
        min=lo,
        max=float(finite.max()),
        mean=float(finite.mean()),
        std=float(finite.std()),
        null_rate=float(1.0 - finite.size / column.size),
    )


def compute_baseline(
    X: np.ndarray,
    scores: np.ndarray,
    y: np.ndarray | None,
    feature_names: list[str],
    bins: int = 10,
    *,
    threshold: float = 0.5,
) -> Baseline:
    """Baseline statistics from a validation set: ``X`` (n x features), model ``scores`` (n), labels ``y``.

    ``y`` may be None (no AUC, e.g. an LLM or an unlabeled set). Raises :class:`RegistryError` naming
    every problem with the input.
    """
    import numpy as np

    X_arr = np.asarray(X, dtype=float)
    s_arr = np.asarray(scores, dtype=float)
    problems: list[str] = []
    if X_arr.ndim != 2:
        problems.append(f"X must be 2-D (samples x features), got shape {X_arr.shape}")
    elif X_arr.shape[1] != len(feature_names):
        problems.append(f"X has {X_arr.shape[1]} columns but {len(feature_names)} feature_names")
    if len(set(feature_names)) != len(feature_names):
        problems.append("feature_names must be unique")
    if s_arr.ndim != 1:
        problems.append(f"scores must be 1-D, got shape {s_arr.shape}")
    elif X_arr.ndim == 2 and s_arr.shape[0] != X_arr.shape[0]:
        problems.append(f"scores has {s_arr.shape[0]} values but X has {X_arr.shape[0]} rows")
    elif s_arr.size < 2:
        problems.append("need at least 2 samples")
    elif not np.all(np.isfinite(s_arr)):
        problems.append("scores contain NaN or infinite values")
    if not isinstance(bins, int) or bins < 2:
        problems.append(f"bins must be an integer >= 2, got {bins!r}")
    y_arr: np.ndarray | None = None
    if y is not None:
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or y_arr.shape[0] != s_arr.shape[0]:
            problems.append(f"y must be 1-D with one label per score, got shape {y_arr.shape}")
        elif np.unique(y_arr).size != 2:
            problems.append(f"y must contain exactly two classes for AUC, got {np.unique(y_arr).size}")
    if problems:
        raise RegistryError("compute_baseline: invalid input", problems)

    auc: float | None = None
    if y_arr is not None:
        from sklearn.metrics import roc_auc_score  # imported here: sklearn is slow to import

        auc = float(roc_auc_score(y_arr, s_arr))
    score_edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    hist, _ = np.histogram(np.clip(s_arr, 0.0, 1.0), bins=score_edges)
    return Baseline(
        n_samples=int(s_arr.size),
        auc=auc,
        threshold=float(threshold),
        score_mean=float(s_arr.mean()),
        score_std=float(s_arr.std()),
        positive_rate=float(np.mean(s_arr >= threshold)),
        score_edges=[float(e) for e in score_edges],
        score_histogram=[float(h) for h in hist / s_arr.size],
        features=[_feature_baseline(n, X_arr[:, i], bins) for i, n in enumerate(feature_names)],
    )
