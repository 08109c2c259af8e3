"""The demo model: scikit-learn's breast-cancer data (30 features), two versions, registered with baselines.

* ``v1`` — standardised logistic regression on the training split: the good, healthy, promoted version.
* ``v2`` — a depth-2 decision tree trained on the training split with 30 % of its labels flipped (a
  "bad artifact pushed" release): noticeably worse validation AUC, registered but not promoted.

Both versions carry the same ``fallback_rule`` in their metadata: a one-feature threshold rule learnt from
the training split (a decision stump), which the server answers from in ``fallback`` mode. Artifacts are
joblib pickles for a SQLite registry, and MLflow sklearn models (``mlflow.sklearn.save_model``, copied
into the version's registration run) for an MLflow registry: only load artifacts you trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_METADATA",
    "BootstrapResult",
    "DemoData",
    "bootstrap",
    "fallback_rule",
    "feature_names",
    "load_data",
    "train_versions",
]

DEFAULT_METADATA: dict[str, Any] = {
    "kind": "classifier",
    "slo_latency_seconds": 0.1,
    "slo_error_ratio": 0.01,
    "latency_buckets": [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
}


@dataclass(frozen=True)
class DemoData:
    feature_names: list[str]
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class BootstrapResult:
    model: str
    versions: dict[str, str]  # version -> artifact path
    validation_auc: dict[str, float]


def feature_names() -> list[str]:
    """The data set's feature names with spaces replaced by underscores (friendlier as label values)."""
    from sklearn.datasets import load_breast_cancer

    return [str(n).replace(" ", "_") for n in load_breast_cancer().feature_names]


def load_data(seed: int = 0) -> DemoData:
    """The breast-cancer data set split 70/30 (stratified); positive class 1 = benign."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    X_train, X_val, y_train, y_val = train_test_split(
        data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    return DemoData(feature_names(), X_train, y_train, X_val, y_val)


def fallback_rule(data: DemoData) -> dict[str, Any]:
    """A one-feature threshold rule (a decision stump) with the positive rate on each side."""
    from sklearn.tree import DecisionTreeClassifier

    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(data.X_train, data.y_train)
    feature = int(stump.tree_.feature[0])
    threshold = float(stump.tree_.threshold[0])
    column = data.X_train[:, feature]
    above = data.y_train[column > threshold]
    below = data.y_train[column <= threshold]
    return {
        "feature": data.feature_names[feature],
        "threshold": threshold,
        "score_above": float(above.mean()) if above.size else 0.5,
        "score_below": float(below.mean()) if below.size else 0.5,
    }


def train_versions(data: DemoData, seed: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    good = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.X_train, data.y_train)
    rng = np.random.default_rng(seed)
    noisy = data.y_train.copy()
    flip = rng.random(noisy.size) < 0.3
    noisy[flip] = 1 - noisy[flip]
    worse = DecisionTreeClassifier(max_depth=2, random_state=seed).fit(data.X_train, noisy)
    return {"v1": good, "v2": worse}


def bootstrap(
    db_path: str | Path,
    model: str,
    artifacts: str | Path,
    *,
    seed: int = 0,
    actor: str = "model-server-bootstrap",
) -> BootstrapResult:
    """Train both versions, save them under ``artifacts``, register them with baselines, promote v1."""
    import joblib

    from model_registry import compute_baseline, is_mlflow_target, open_registry

    data = load_data(seed)
    artifacts_dir = Path(artifacts)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    rule = fallback_rule(data)
    registry = open_registry(str(db_path))
    paths: dict[str, str] = {}
    aucs: dict[str, float] = {}
    for version, estimator in train_versions(data, seed).items():
        path = artifacts_dir / f"{model}-{version}.joblib"
        if is_mlflow_target(db_path):
            import mlflow.sklearn

            path = artifacts_dir / f"{model}-{version}-mlflow"
            if not path.exists():
                # cloudpickle, as MLflow always did: the skops default refuses tree models
                mlflow.sklearn.save_model(
                    estimator, str(path), serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE
                )
        else:
            joblib.dump(estimator, path)
        scores = estimator.predict_proba(data.X_val)[:, 1]
        baseline = compute_baseline(data.X_val, scores, data.y_val, data.feature_names)
        metadata = {
            **DEFAULT_METADATA,
            "feature_names": data.feature_names,
            "fallback_rule": rule,
            "estimator": type(estimator).__name__,
        }
        registry.register(
            model,
            version,
            artifact_path=str(path),
            baseline=baseline,
            metadata=metadata,
            actor=actor,
            reason=f"demo bootstrap: {metadata['estimator']}",
            healthy=(version == "v1"),
        )
        paths[version] = str(path)
        aucs[version] = float(baseline.auc or 0.0)
    registry.promote(model, "v1", actor=actor, reason="demo bootstrap: v1 is the good version")
    return BootstrapResult(model, paths, aucs)
