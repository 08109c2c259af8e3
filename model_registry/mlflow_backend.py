"""MLflow Model Registry backend: the registry's state in aliases and tags of the registry teams already run.

Mapping: :mod:`model_registry.mlflow_mapping` (alias ``champion`` = active, ``last-known-good``, tags for
traffic, mode, guardrail, tools, health marks and the generation). Only MLflow's REST API is used, so the
receiver needs no ``mlflow`` package.

One change, optimistic on the generation tag (MLflow has no transactions and no compare-and-set on tags):

1. read the model; its ``registry.generation`` is ``g``;
2. claim ``g+1`` by creating the experiment ``.model-registry-locks/<model>/<created>/<g+1>``. Creating a
   uniquely named object is the one atomic compare-and-set MLflow offers: of two writers that read ``g``,
   exactly one creates it; the other gets ``RESOURCE_ALREADY_EXISTS`` and loses the race;
3. re-read under the claim; if the generation is no longer ``g`` (someone committed in between), lose;
4. compute the change on that fresh state (a refusal releases the claim and writes nothing), write version
   tags, model tags and aliases, then the generation ``g+1`` last (the commit point model servers poll);
5. write the audit entry, re-read and check that the generation and ``champion`` are what was written
   (a writer outside the registry, e.g. the MLflow UI, may have moved them: :class:`WriteConflictError`);
6. release the claim (a committed claim is deleted, which keeps its name reserved; an aborted one is
   renamed first so the name is free again).

A lost race is retried a few times inside :meth:`apply` with jitter (the change is recomputed on the new
state, so a second rollback with ``expected_active`` is refused, never applied twice), then surfaces as
:class:`WriteConflictError`, which the receiver's executor retries. A claim older than ``lease_seconds``
(server clock) belongs to a writer that died: it is renamed away and the change proceeds. Such a writer
may have left part of its change applied without a generation bump or audit entry; ``model-registry
check`` shows the state that no audit entry explains.

Audit history: one MLflow run per change in the experiment ``model-registry-audit``, with tags
``registry.model``, ``action``, ``actor``, ``reason``, ``generation`` and the ``before``/``after`` summaries.
Why runs, not a table of ours: the history then lives (and is backed up) with the registry it describes,
every writer on every host reaches it with the credentials it already has, and MLflow users see it in the
UI next to the model. ``AuditEntry.id`` is the change's generation (unique per model).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

from incident_common.errors import RegistryError, WriteConflictError
from model_registry.backend import Change
from model_registry.baseline import Baseline
from model_registry.mlflow_mapping import (
    ALIAS_ACTIVE,
    ALIAS_LKG,
    T_CHAMPION,
    T_GENERATION,
    V_BASELINE,
    MLflowVersion,
    model_tags,
    state_from_mlflow,
    version_tags,
)
from model_registry.mlflow_rest import MLflowExists, MLflowNotFound, MLflowRest
from model_registry.mlflow_runs import MLflowRuns
from model_registry.state import AuditEntry, ModelState, VersionInfo, from_timestamp

__all__ = ["LOCK_PREFIX", "MLflowBackend"]

log = logging.getLogger("model_registry.mlflow")

LOCK_PREFIX = ".model-registry-locks"


class _LostRace(Exception):
    """Another writer got in first; nothing was written by this attempt."""


class MLflowBackend:
    """The registry in an MLflow tracking server (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        lease_seconds: float = 30.0,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rest = MLflowRest(url, token=token, session=session, timeout=timeout)
        self.url = self.rest.url
        self.lease_seconds = lease_seconds
        self.attempts = max(1, attempts)
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()
        self._baselines: dict[str, Baseline | None] = {}
        self.runs = MLflowRuns(self.rest, clock)

    def __repr__(self) -> str:
        return f"MLflowBackend({self.url!r})"

    # -- reading -----------------------------------------------------------------------------------

    def _model(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.rest.get("/registered-models/get", name=name).get("registered_model") or {})
        except MLflowNotFound:
            return None

    def _versions(self, name: str) -> list[MLflowVersion]:
        out: list[MLflowVersion] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"filter": f"name='{name}'", "max_results": 1000}
            if token:
                params["page_token"] = token
            page = self.rest.get("/model-versions/search", **params)
            out.extend(MLflowVersion.from_json(mv) for mv in page.get("model_versions") or [])
            token = page.get("next_page_token")
            if not token:
                return out

    def _baseline(self, v: MLflowVersion) -> Baseline | None:
        uri = v.tags.get(V_BASELINE)
        if not uri:
            return None
        if uri not in self._baselines:  # versions are immutable: read each baseline once
            try:
                self._baselines[uri] = Baseline.from_dict(json.loads(self.rest.read_bytes(uri)))
            except (RegistryError, ValueError) as exc:
                log.warning(
                    "baseline of %s version %s at %s unreadable (%s); serving without it",
                    v.tags.get("registry.version"),
                    v.number,
                    uri,
                    exc,
                )
                return None
        return self._baselines[uri]

    def _read(self, name: str) -> tuple[dict[str, Any], ModelState, dict[str, str]] | None:
        """(registered model JSON, state, our version name -> MLflow version number)."""
        rm = self._model(name)
        if rm is None:
            return None
        versions = self._versions(name)
        state = state_from_mlflow(rm, versions, {v.number: self._baseline(v) for v in versions})
        return rm, state, {v.name: v.number for v in versions}

    def models(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"max_results": 1000}
            if token:
                params["page_token"] = token
            page = self.rest.get("/registered-models/search", **params)
            names.extend(str(m.get("name")) for m in page.get("registered_models") or [])
            token = page.get("next_page_token")
            if not token:
                return sorted(names)

    def load(self, model: str) -> ModelState | None:
        read = self._read(model)
        return None if read is None else read[1]

    def generation(self, model: str) -> int | None:
        rm = self._model(model)
        if rm is None:
            return None
        tags = {t.get("key"): t.get("value") for t in rm.get("tags") or []}
        return int(tags.get(T_GENERATION) or 0)

    def serving_token(self, model: str) -> str | None:
        """What a model server polls (one GET): the generation plus ``champion``, so a move of the alias
        outside the registry (MLflow UI) is followed too."""
        rm = self._model(model)
        if rm is None:
            return None
        tags = {t.get("key"): t.get("value") for t in rm.get("tags") or []}
        aliases = {a.get("alias"): a.get("version") for a in rm.get("aliases") or []}
        return f"{tags.get(T_GENERATION) or 0}:{aliases.get(ALIAS_ACTIVE)}:{tags.get(T_CHAMPION)}"

    def history(self, model: str | None, limit: int) -> list[AuditEntry]:
        return self.runs.history(model, limit)

    def download_model(self, model: str, info: VersionInfo, dest: Path) -> Path:
        """The artifacts of a version through MLflow (``models:/NAME/NUMBER``), into ``dest``."""
        import mlflow.artifacts  # the model server's 'mlflow' extra
        from mlflow import MlflowClient

        if self.rest.has_token and not os.environ.get("MLFLOW_TRACKING_TOKEN"):
            # the mlflow client reads its credentials only from the environment
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.rest.token_for_mlflow_client()

        # MLflow resolves models:/NAME/NUMBER to where the version's files live
        client = MlflowClient(tracking_uri=self.url, registry_uri=self.url)
        uri = client.get_model_version_download_uri(model, str(info.seq))
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(dest), tracking_uri=self.url
        )
        return Path(path)

    # -- writing -----------------------------------------------------------------------------------

    def apply(
        self, model: str, action: str, actor: str, reason: str, change: Change
    ) -> tuple[ModelState, AuditEntry]:
        last = ""
        for attempt in range(self.attempts):
            try:
                return self._apply_once(model, action, actor, reason, change)
            except _LostRace as exc:
                last = str(exc)
                if attempt + 1 < self.attempts:
                    self._sleep(self._rng.uniform(0.02, 0.1) * (attempt + 1))
        raise WriteConflictError(
            f"MLflow at {self.url}: model {model!r} was changed by another writer during each of "
            f"{self.attempts} attempts ({last}); nothing was written by this {action}, retry it"
        )

    def _apply_once(
        self, model: str, action: str, actor: str, reason: str, change: Change
    ) -> tuple[ModelState, AuditEntry]:
        rm = self._model(model)
        new_model = rm is None
        if rm is None:
            change(None)  # validate before creating anything; raises to refuse
            try:
                rm = (
                    self.rest.post(
                        "/registered-models/create", name=model, tags=[{"key": T_GENERATION, "value": "0"}]
                    ).get("registered_model")
                    or {}
                )
            except MLflowExists:
                raise _LostRace("the model was created concurrently") from None
        generation = int(_tag_map(rm).get(T_GENERATION) or 0)
        lock = self._claim(model, int(rm.get("creation_timestamp") or 0), generation + 1)
        committed = False
        try:
            read = self._read(model)
            if read is None or read[1].generation != generation:
                raise _LostRace("its generation moved on before the claim")
            fresh, current, numbers = read
            proposed = change(None if new_model else current)
            written, numbers = self._write(model, fresh, current, proposed, numbers, action)
            self.rest.post(
                "/registered-models/set-tag", name=model, key=T_GENERATION, value=str(written.generation)
            )
            committed = True
            before: dict[str, Any] = {} if new_model else current.summary()
            entry = self.runs.audit(
                model, action, actor, reason, before, written.summary(), written.generation
            )
            self._verify(model, written, numbers)
            return written, entry
        finally:
            self._release(lock, committed)

    def _claim(self, model: str, created: int, generation: int) -> str:
        name = f"{LOCK_PREFIX}/{model}/{created}/{generation}"
        for _ in range(2):
            try:
                return str(self.rest.post("/experiments/create", name=name)["experiment_id"])
            except MLflowExists:
                exp = self.rest.get("/experiments/get-by-name", experiment_name=name).get("experiment") or {}
            if exp.get("lifecycle_stage") == "deleted":
                raise _LostRace(f"generation {generation} was committed by another writer")
            now = self.rest.server_time or self._clock()
            age = now - int(exp.get("creation_time") or 0) / 1000.0
            if age <= self.lease_seconds:
                raise _LostRace(f"another writer holds generation {generation} (for {age:.1f}s)")
            log.warning(
                "MLflow at %s: taking over the claim on %s generation %d, abandoned %.0fs ago",
                self.url,
                model,
                generation,
                age,
            )
            self._rename_away(str(exp.get("experiment_id")), name, "abandoned")
        raise _LostRace(f"could not claim generation {generation}")

    def _rename_away(self, experiment_id: str, name: str, why: str) -> None:
        # renamed or deleted by someone else meanwhile: the name is what matters
        with contextlib.suppress(MLflowNotFound, MLflowExists, RegistryError):
            self.rest.post(
                "/experiments/update",
                experiment_id=experiment_id,
                new_name=f"{name}.{why}-{uuid.uuid4().hex[:12]}",
            )

    def _release(self, experiment_id: str, committed: bool) -> None:
        try:
            if not committed:
                exp = self.rest.get("/experiments/get", experiment_id=experiment_id).get("experiment") or {}
                self._rename_away(experiment_id, str(exp.get("name")), "aborted")
            self.rest.post("/experiments/delete", experiment_id=experiment_id)
        except RegistryError as exc:  # an unreleased claim only delays the next writer by the lease
            log.warning("MLflow at %s: could not release claim %s: %s", self.url, experiment_id, exc.message)

    def _write(
        self,
        model: str,
        fresh: dict[str, Any],
        current: ModelState,
        new: ModelState,
        numbers: dict[str, str],
        action: str,
    ) -> tuple[ModelState, dict[str, str]]:
        """Version tags, model tags, aliases: only what differs from ``current`` (the generation is
        written by the caller, last)."""
        numbers = dict(numbers)
        old = {v.version: v for v in current.versions}
        stored_versions: list[VersionInfo] = []
        for v in new.versions:
            before = old.get(v.version)
            if before is None:
                number, created_ms = self.runs.create_version(model, v)
                numbers[v.version] = number
                v = replace(v, seq=int(number), registered_at=from_timestamp(created_ms / 1000.0))
            else:
                changed = {
                    k: val
                    for k, val in version_tags(v, new=False).items()
                    if version_tags(before, new=False)[k] != val
                }
                for key, value in changed.items():
                    self.rest.post(
                        "/model-versions/set-tag",
                        name=model,
                        version=numbers[v.version],
                        key=key,
                        value=value,
                    )
            stored_versions.append(v)
        stored = replace(new, versions=stored_versions, generation=current.generation + 1)
        old_tags = _tag_map(fresh)
        for key, value in model_tags(stored, numbers).items():
            if old_tags.get(key) != value:
                self.rest.post("/registered-models/set-tag", name=model, key=key, value=value)
        aliases = _alias_map(fresh)
        for alias, version in ((ALIAS_ACTIVE, stored.active_version), (ALIAS_LKG, stored.last_known_good)):
            target = numbers.get(version or "")
            if aliases.get(alias) != target:
                self._alias(model, alias, target)
        return stored, numbers

    def _alias(self, model: str, alias: str, number: str | None) -> None:
        if number:
            self.rest.post("/registered-models/alias", name=model, alias=alias, version=number)
        else:
            with contextlib.suppress(MLflowNotFound):
                self.rest.call("DELETE", "/registered-models/alias", {"name": model, "alias": alias})

    def _verify(self, model: str, written: ModelState, numbers: dict[str, str]) -> None:
        """Re-read after writing (one GET): a writer outside the registry, e.g. the MLflow UI, may have
        got in between."""
        rm = self._model(model) or {}
        tags, aliases = _tag_map(rm), _alias_map(rm)
        expected = {**model_tags(written, numbers), T_GENERATION: str(written.generation)}
        problems = [
            f"tag {k} reads {tags.get(k)!r}, not the {v!r} written"
            for k, v in expected.items()
            if tags.get(k) != v
        ]
        for alias, version in ((ALIAS_ACTIVE, written.active_version), (ALIAS_LKG, written.last_known_good)):
            if aliases.get(alias) != numbers.get(version or ""):
                problems.append(
                    f"alias {alias} points at {aliases.get(alias)}, not {numbers.get(version or '')}"
                )
        if problems:
            raise WriteConflictError(
                f"MLflow at {self.url}: model {model!r} changed while this change was written ("
                + "; ".join(problems)
                + "); the change is recorded in the audit history, re-read and "
                "check the model (model-registry check)",
                problems,
            )

    # -- checking ----------------------------------------------------------------------------------

    def integrity_problems(self) -> list[str]:
        problems: list[str] = []
        for name in self.models():
            rm = self._model(name) or {}
            tags = {t.get("key"): t.get("value") for t in rm.get("tags") or []}
            if T_GENERATION not in tags:
                continue  # not managed by this registry (yet)
            aliases = {a.get("alias"): a.get("version") for a in rm.get("aliases") or []}
            if (aliases.get(ALIAS_ACTIVE) or "") != (tags.get(T_CHAMPION) or ""):
                problems.append(
                    f"{name}: alias {ALIAS_ACTIVE} ({aliases.get(ALIAS_ACTIVE)}) was moved "
                    f"outside the registry (last set to {tags.get(T_CHAMPION) or 'none'})"
                )
        return problems


def _tag_map(obj: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("key")): str(t.get("value", "")) for t in obj.get("tags") or []}


def _alias_map(obj: dict[str, Any]) -> dict[str, str]:
    return {str(a.get("alias")): str(a.get("version")) for a in obj.get("aliases") or []}
