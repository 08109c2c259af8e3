"""How a model's registry state is spelled in MLflow: tag and alias names, and the pure conversions.

Kept apart from the HTTP code so the mapping (the table in :mod:`model_registry.backend`) reads in one
page and is tested without a server. A version created by a plain MLflow user has none of our tags: it is
named by its MLflow version number, has no metadata and no baseline, and is neither unhealthy nor a
last-known-good candidate until the registry records that it served healthily.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from model_registry.baseline import Baseline
from model_registry.state import ModelState, VersionInfo, from_timestamp

__all__ = [
    "ALIAS_ACTIVE",
    "ALIAS_LKG",
    "MLflowVersion",
    "model_tags",
    "state_from_mlflow",
    "version_tags",
]

log = logging.getLogger("model_registry.mlflow")

ALIAS_ACTIVE = "champion"
ALIAS_LKG = "last-known-good"

T_GENERATION = "registry.generation"
T_TRAFFIC = "registry.traffic"
T_MODE = "registry.mode"
T_GUARDRAIL = "registry.guardrail_level"
T_TOOLS = "registry.tools_blocked"
T_ACTIVE_SINCE = "registry.active_since"
#: The MLflow version number we last pointed ``champion`` at: when the alias differs, someone moved it
#: outside the registry (MLflow UI or client), and that move wins (traffic becomes 100 % champion).
T_CHAMPION = "registry.champion"

V_NAME = "registry.version"
V_METADATA = "registry.metadata"
V_BASELINE = "registry.baseline"
#: The artifact path as registered (the MLflow ``source`` is the copy inside the registration run).
V_ARTIFACT = "registry.artifact_path"
V_UNHEALTHY = "registry.unhealthy"
V_SERVED_HEALTHY = "registry.served_healthy"


def _flag(value: str | None) -> bool:
    return str(value).lower() == "true"


def _tags(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("key")): str(t.get("value", "")) for t in obj.get("tags") or []}


@dataclass(frozen=True)
class MLflowVersion:
    """One MLflow model version as read: its number, our name for it, its tags and source."""

    number: str
    name: str
    source: str
    run_id: str
    created_ms: int
    tags: dict[str, str]

    @property
    def ours(self) -> bool:
        return V_NAME in self.tags

    @classmethod
    def from_json(cls, mv: Mapping[str, Any]) -> MLflowVersion:
        tags = _tags(mv)
        number = str(mv.get("version"))
        return cls(
            number,
            tags.get(V_NAME) or number,
            str(mv.get("source") or ""),
            str(mv.get("run_id") or ""),
            int(mv.get("creation_timestamp") or 0),
            tags,
        )


def _json_tag(tags: Mapping[str, str], key: str, default: Any, where: str) -> Any:
    raw = tags.get(key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        log.warning("%s: tag %s is not valid JSON; ignored", where, key)
        return default


def state_from_mlflow(
    model: Mapping[str, Any], versions: list[MLflowVersion], baselines: Mapping[str, Baseline | None]
) -> ModelState:
    """The registry state of one registered model (``registered-models/get``) and its versions.

    ``baselines`` maps an MLflow version number to its baseline (already read from ``baseline.json``).
    """
    name = str(model.get("name"))
    tags = _tags(model)
    aliases = {str(a.get("alias")): str(a.get("version")) for a in model.get("aliases") or []}
    by_number = {v.number: v for v in versions}
    infos = [
        VersionInfo(
            model=name,
            version=v.name,
            artifact_path=v.tags.get(V_ARTIFACT) or v.source,
            registered_at=from_timestamp(v.created_ms / 1000.0),
            metadata=_json_tag(v.tags, V_METADATA, {}, f"{name}/{v.name}") if v.ours else {},
            baseline=baselines.get(v.number),
            unhealthy=_flag(v.tags.get(V_UNHEALTHY)),
            served_healthy=_flag(v.tags.get(V_SERVED_HEALTHY)),
            seq=int(v.number) if v.number.isdigit() else 0,
        )
        for v in sorted(versions, key=lambda v: int(v.number) if v.number.isdigit() else 0)
    ]
    champion_number = aliases.get(ALIAS_ACTIVE)
    champion = by_number[champion_number].name if champion_number in by_number else None
    traffic = {str(k): float(w) for k, w in _json_tag(tags, T_TRAFFIC, {}, name).items()}
    since_raw = tags.get(T_ACTIVE_SINCE)
    active_since = from_timestamp(float(since_raw)) if since_raw else None
    if champion is not None and tags.get(T_CHAMPION) != champion_number:
        # champion was moved (or set first) outside the registry: it serves everything, age unknown
        traffic, active_since = {champion: 100.0}, None
    known = {i.version for i in infos}
    if champion is None or any(v not in known for v in traffic):
        traffic = {} if champion is None else {champion: 100.0}
    level = tags.get(T_GUARDRAIL, "0")
    return ModelState(
        model=name,
        active_version=champion,
        traffic=traffic,
        mode=tags[T_MODE] if tags.get(T_MODE) in ("normal", "fallback") else "normal",
        guardrail_level=int(level) if level.isdigit() and int(level) <= 3 else 0,
        generation=int(tags.get(T_GENERATION, "0") or 0),
        active_since=active_since,
        versions=infos,
        tools_blocked=_flag(tags.get(T_TOOLS)),
    )


def model_tags(state: ModelState, numbers: Mapping[str, str]) -> dict[str, str]:
    """Registered-model tags for ``state`` (all but the generation, which is written last)."""
    out = {
        T_TRAFFIC: json.dumps(dict(sorted(state.traffic.items())), sort_keys=True),
        T_MODE: state.mode,
        T_GUARDRAIL: str(state.guardrail_level),
        T_TOOLS: "true" if state.tools_blocked else "false",
        T_ACTIVE_SINCE: "" if state.active_since is None else repr(state.active_since.timestamp()),
        T_CHAMPION: "" if state.active_version is None else numbers.get(state.active_version, ""),
    }
    return out


def version_tags(info: VersionInfo, *, baseline_uri: str | None = None, new: bool) -> dict[str, str]:
    """Version tags: on creation every tag of ours; later only the health flags change."""
    out = {
        V_UNHEALTHY: "true" if info.unhealthy else "false",
        V_SERVED_HEALTHY: "true" if info.served_healthy else "false",
    }
    if new:
        out[V_NAME] = info.version
        out[V_METADATA] = json.dumps(info.metadata, sort_keys=True)
        if baseline_uri:
            out[V_BASELINE] = baseline_uri
    return out
