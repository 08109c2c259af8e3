"""Load a version's estimator from wherever its registry keeps it.

* SQLite registry: ``artifact_path`` is a joblib file on this host (the demo's artifacts).
* MLflow registry: through MLflow itself, ``models:/NAME/NUMBER`` downloaded with the ``mlflow`` extra;
  a directory with an ``MLmodel`` file loads with the sklearn flavour when it has one (``predict_proba``),
  otherwise as pyfunc (its ``predict`` output is the score); a directory holding one joblib/pickle file
  (registered with ``model-registry register --artifact file.joblib``) loads that file.

Feature names come from the version's metadata or baseline; a version registered by a plain MLflow user
has neither, so they come from the model's signature or the estimator's ``feature_names_in_``.
Artifacts are trusted code (joblib and MLflow models are pickles): serve only registries you trust.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["LoadedModel", "load_version"]

log = logging.getLogger("model_server")


class LoadedModel:
    """An estimator with ``predict_proba`` and the feature names it expects (may be empty)."""

    def __init__(self, estimator: Any, feature_names: list[str]) -> None:
        self.estimator = estimator
        self.feature_names = feature_names


class _PyfuncScores:
    """A pyfunc model as a classifier: its ``predict`` output is the positive-class score."""

    def __init__(self, model: Any, names: list[str]) -> None:
        self.model = model
        self.names = names

    def predict_proba(self, rows: Any) -> Any:
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame(rows, columns=self.names or None)
        scores = np.asarray(self.model.predict(frame), dtype=float).reshape(-1)
        return np.column_stack([1.0 - scores, scores])


def _feature_names(estimator: Any, signature_names: list[str]) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    if signature_names:
        return signature_names
    count = getattr(estimator, "n_features_in_", None)
    return [f"f{i}" for i in range(int(count))] if count else []


def _load_mlflow_dir(path: Path) -> LoadedModel:
    import mlflow.pyfunc
    from mlflow.models import Model

    meta = Model.load(str(path / "MLmodel"))
    signature_names: list[str] = []
    schema = meta.get_input_schema()
    if schema is not None and schema.has_input_names():
        signature_names = [str(n) for n in schema.input_names()]
    if "sklearn" in meta.flavors:
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(str(path))
        return LoadedModel(estimator, _feature_names(estimator, signature_names))
    return LoadedModel(_PyfuncScores(mlflow.pyfunc.load_model(str(path)), signature_names), signature_names)


def _load_file(path: Path) -> LoadedModel:
    import joblib

    estimator = joblib.load(path)  # trusted artifacts (see the module docstring)
    return LoadedModel(estimator, _feature_names(estimator, []))


def load_version(registry: Any, model: str, info: Any, cache_dir: Path) -> LoadedModel:
    """The estimator of ``info`` (a :class:`model_registry.VersionInfo`)."""
    download = getattr(registry.backend, "download_model", None)
    if download is None:
        return _load_file(Path(info.artifact_path))
    dest = cache_dir / f"{model}-{info.seq}"
    dest.mkdir(parents=True, exist_ok=True)
    path = Path(download(model, info, dest))
    if (path / "MLmodel").exists():
        return _load_mlflow_dir(path)
    if path.is_file():
        return _load_file(path)
    files = [p for p in path.rglob("*") if p.suffix in (".joblib", ".pkl") and p.is_file()]
    if len(files) != 1:
        raise LookupError(
            f"{model} version {info.version}: MLflow artifacts at {path} hold no MLmodel and "
            f"{len(files)} joblib/pickle files; cannot tell what to load"
        )
    return _load_file(files[0])
