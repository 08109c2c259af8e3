"""Model registry: versions, baselines, the active version, traffic weights, serving mode, guardrail level,
the risky-tool switch, health marks and an audit history of every change. SQLite by default (see
:mod:`model_registry.sqlite`), or an MLflow Model Registry (``open_registry("mlflow+http://host:5000")``,
see :mod:`model_registry.mlflow_backend`); both implement :class:`~model_registry.backend.RegistryBackend`.
Importing this package needs no numpy (only :func:`compute_baseline` and the bin helpers do).

::

    reg = open_registry("registry.db")
    reg.register("fraud", "v2", artifact_path="models/v2.joblib", baseline=compute_baseline(X, s, y, names),
                 metadata={"slo_latency_seconds": 0.1, "latency_buckets": [0.025, 0.05, 0.1, 0.25]},
                 actor="alice", reason="weekly retrain")
    reg.promote("fraud", "v2", actor="alice", reason="release 42")
    reg.rollback("fraud", actor="receiver", reason="INC-7: AUC drop", expected_active="v2")

Last-known-good rule: :mod:`model_registry.state`. Metadata conventions: :mod:`model_registry.validation`.
Baseline bins: :mod:`model_registry.baseline`.
"""

from incident_common.errors import (
    ConflictError,
    NoHealthyFallbackError,
    RegistryError,
    RegistryUnavailableError,
    UnknownModelError,
    UnknownVersionError,
)
from model_registry.backend import RegistryBackend
from model_registry.baseline import Baseline, FeatureBaseline, compute_baseline
from model_registry.registry import Registry, describe_target, is_mlflow_target, open_registry
from model_registry.sqlite import SQLiteBackend
from model_registry.state import AuditEntry, ModelState, RollbackResult, VersionInfo

__all__ = [
    "AuditEntry",
    "Baseline",
    "ConflictError",
    "FeatureBaseline",
    "ModelState",
    "NoHealthyFallbackError",
    "Registry",
    "RegistryBackend",
    "RegistryError",
    "RegistryUnavailableError",
    "RollbackResult",
    "SQLiteBackend",
    "UnknownModelError",
    "UnknownVersionError",
    "VersionInfo",
    "compute_baseline",
    "describe_target",
    "is_mlflow_target",
    "open_registry",
]
