"""The MLflow runs the registry writes: one registration run per version (the artifact copied under
``model/`` and ``baseline.json``) and one audit run per change (who, why, before/after), in two experiments.

Split from :mod:`model_registry.mlflow_backend`, which owns the state and the concurrency protocol.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_registry.mlflow_mapping import V_ARTIFACT, version_tags
from model_registry.mlflow_rest import MLflowExists, MLflowNotFound, MLflowRest
from model_registry.state import AuditEntry, VersionInfo, from_timestamp

__all__ = ["ARTIFACT_EXPERIMENT", "AUDIT_EXPERIMENT", "MLflowRuns", "audit_from_run"]

AUDIT_EXPERIMENT = "model-registry-audit"
ARTIFACT_EXPERIMENT = "model-registry-versions"


class MLflowRuns:
    """Registration and audit runs on one tracking server."""

    def __init__(self, rest: MLflowRest, clock: Callable[[], float]) -> None:
        self.rest = rest
        self._clock = clock
        self._experiments: dict[str, str] = {}

    def history(self, model: str | None, limit: int) -> list[AuditEntry]:
        experiment = self.experiment(AUDIT_EXPERIMENT, create=False)
        if experiment is None:
            return []
        body: dict[str, Any] = {
            "experiment_ids": [experiment],
            "max_results": min(limit, 1000),
            "order_by": ["attributes.start_time DESC"],
            "run_view_type": "ACTIVE_ONLY",
        }
        if model is not None:
            body["filter"] = f"tags.`registry.model` = '{model}'"
            body["order_by"] = ["tags.`registry.seq` DESC"]
        runs = self.rest.post("/runs/search", **body).get("runs") or []
        return [audit_from_run(r) for r in runs]

    def create_version(self, model: str, info: VersionInfo) -> tuple[str, int]:
        """One registration run holding ``model/`` (a local artifact, copied) and ``baseline.json``."""
        experiment = self.experiment(ARTIFACT_EXPERIMENT, create=True)
        assert experiment is not None
        run = self.rest.post(
            "/runs/create",
            experiment_id=experiment,
            run_name=f"{model} {info.version}",
            start_time=int(self._clock() * 1000),
            tags=[
                {"key": "registry.model", "value": model},
                {"key": "registry.version", "value": info.version},
            ],
        )["run"]["info"]
        root = str(run["artifact_uri"])
        source, local = info.artifact_path, Path(info.artifact_path)
        if "://" not in source and ":" not in source.split("/")[0]:
            # a local path is copied into the run (MLflow only accepts local sources inside a run)
            if local.exists():
                self.rest.upload(local, root, "model" if local.is_dir() else f"model/{local.name}")
            source = f"{root}/model"
        baseline_uri = None
        if info.baseline is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "baseline.json"
                path.write_text(json.dumps(info.baseline.to_dict()))
                self.rest.upload(path, root, "baseline.json")
            baseline_uri = f"{root}/baseline.json"
        self.rest.post(
            "/runs/update", run_id=run["run_id"], status="FINISHED", end_time=int(self._clock() * 1000)
        )
        tags = version_tags(info, baseline_uri=baseline_uri, new=True)
        tags[V_ARTIFACT] = info.artifact_path
        mv = self.rest.post(
            "/model-versions/create",
            name=model,
            source=source,
            run_id=run["run_id"],
            tags=[{"key": k, "value": v} for k, v in tags.items()],
        )["model_version"]
        return str(mv["version"]), int(mv.get("creation_timestamp") or self._clock() * 1000)

    def experiment(self, name: str, *, create: bool) -> str | None:
        if name in self._experiments:
            return self._experiments[name]
        try:
            exp = self.rest.get("/experiments/get-by-name", experiment_name=name)["experiment"]
            found = str(exp["experiment_id"])
        except MLflowNotFound:
            if not create:
                return None
            try:
                found = str(self.rest.post("/experiments/create", name=name)["experiment_id"])
            except MLflowExists:  # created concurrently
                found = str(
                    self.rest.get("/experiments/get-by-name", experiment_name=name)["experiment"][
                        "experiment_id"
                    ]
                )
        self._experiments[name] = found
        return found

    def audit(
        self,
        model: str,
        action: str,
        actor: str,
        reason: str,
        before: dict[str, Any],
        after: dict[str, Any],
        generation: int,
    ) -> AuditEntry:
        experiment = self.experiment(AUDIT_EXPERIMENT, create=True)
        now = self._clock()
        tags = {
            "registry.model": model,
            "registry.action": action,
            "registry.actor": actor,
            "registry.reason": reason[:4000],
            "registry.generation": str(generation),
            "registry.seq": f"{generation:012d}",
            "registry.before": json.dumps(before),
            "registry.after": json.dumps(after),
        }
        run = self.rest.post(
            "/runs/create",
            experiment_id=experiment,
            start_time=int(now * 1000),
            run_name=f"{model} {action} g{generation}",
            tags=[{"key": k, "value": v} for k, v in tags.items()],
        )["run"]["info"]
        self.rest.post("/runs/update", run_id=run["run_id"], status="FINISHED", end_time=int(now * 1000))
        return AuditEntry(generation, from_timestamp(now), model, action, actor, reason, before, after)


def audit_from_run(run: dict[str, Any]) -> AuditEntry:
    info, data = run.get("info") or {}, run.get("data") or {}
    tags = {str(t.get("key")): str(t.get("value", "")) for t in data.get("tags") or []}
    return AuditEntry(
        id=int(tags.get("registry.generation") or 0),
        at=from_timestamp(int(info.get("start_time") or 0) / 1000.0),
        model=tags.get("registry.model", ""),
        action=tags.get("registry.action", ""),
        actor=tags.get("registry.actor", ""),
        reason=tags.get("registry.reason", ""),
        before=json.loads(tags.get("registry.before") or "{}"),
        after=json.loads(tags.get("registry.after") or "{}"),
    )
