"""The registry's rules on top of a :class:`~model_registry.backend.RegistryBackend`.

Every mutating method is one atomic backend ``apply``: the checks that depend on the current state run
inside it (under the write lock), so a refusal changes nothing and two writers never both act on a stale
view. Every change needs a non-empty ``actor`` and ``reason`` (incident id, operator note) for the audit.

Refusals
    * rollback / split_to_last_known_good with no last known good -> :class:`NoHealthyFallbackError`
      (the message lists why each other version does not qualify and what to do instead);
    * rollback with ``expected_active`` that is no longer active -> :class:`ConflictError`;
    * promote of, or traffic to, a version marked unhealthy -> :class:`RegistryError`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from incident_common.errors import (
    ConflictError,
    NoHealthyFallbackError,
    RegistryError,
    UnknownModelError,
    UnknownVersionError,
)
from model_registry.backend import Change, RegistryBackend
from model_registry.baseline import Baseline
from model_registry.sqlite import SQLiteBackend
from model_registry.state import (
    MODES,
    SUMMARY_DEFAULTS,
    AuditEntry,
    ModelState,
    RollbackResult,
    VersionInfo,
    from_timestamp,
)
from model_registry.validation import metadata_problems, name_problems, weights_problems

__all__ = ["MLFLOW_SCHEMES", "Registry", "describe_target", "is_mlflow_target", "open_registry"]


#: The scheme prefix that selects the MLflow backend: ``mlflow+http://host:5000``.
MLFLOW_SCHEMES = ("mlflow+http://", "mlflow+https://")


def is_mlflow_target(target: str | Path) -> bool:
    return str(target).startswith(MLFLOW_SCHEMES)


def open_registry(
    target: str | Path,
    *,
    create: bool = True,
    busy_timeout: float = 10.0,
    token_file: str | Path | None = None,
    timeout: float = 10.0,
    session: Any = None,
) -> Registry:
    """The registry at ``target``: ``mlflow+http(s)://host:port`` is an MLflow Model Registry (token from
    ``token_file``, else ``MLFLOW_TRACKING_TOKEN``); anything else is a SQLite file (file and schema
    created unless ``create=False``)."""
    if is_mlflow_target(target):
        from model_registry.mlflow_backend import MLflowBackend
        from model_registry.mlflow_rest import read_token

        url = str(target).removeprefix("mlflow+")
        return Registry(MLflowBackend(url, token=read_token(token_file), timeout=timeout, session=session))
    return Registry(SQLiteBackend(target, create=create, busy_timeout=busy_timeout))


def describe_target(target: str | Path) -> str:
    """How a registry target is named in messages (never with credentials)."""
    return f"MLflow at {str(target).removeprefix('mlflow+')}" if is_mlflow_target(target) else f"{target}"


def _check_who(actor: object, reason: object) -> None:
    problems = []
    if not isinstance(actor, str) or not actor.strip():
        problems.append("actor must be a non-empty string (who makes the change)")
    if not isinstance(reason, str) or not reason.strip():
        problems.append("reason must be a non-empty string (why: incident id, operator note)")
    if problems:
        raise RegistryError("; ".join(problems), problems)


def _require_model(state: ModelState | None, model: str) -> ModelState:
    if state is None:
        raise UnknownModelError(f"unknown model {model!r} (register a version first)")
    return state


def _require_version(state: ModelState, version: str) -> VersionInfo:
    info = state.version(version)
    if info is None:
        known = ", ".join(v.version for v in state.versions) or "none"
        raise UnknownVersionError(f"model {state.model!r} has no version {version!r} (registered: {known})")
    return info


def _require_active(state: ModelState, doing: str) -> str:
    if state.active_version is None:
        raise RegistryError(f"model {state.model!r} has no active version; promote one before you {doing}")
    return state.active_version


def _set_flags(
    state: ModelState, version: str, unhealthy: bool | None = None, served_healthy: bool | None = None
) -> list[VersionInfo]:
    out = []
    for v in state.versions:
        if v.version == version:
            v = replace(
                v,
                unhealthy=v.unhealthy if unhealthy is None else unhealthy,
                served_healthy=v.served_healthy if served_healthy is None else served_healthy,
            )
        out.append(v)
    return out


def _no_fallback_message(state: ModelState, doing: str) -> str:
    active = state.active_version
    others = [v for v in state.versions if v.version != active]
    if not others:
        why = f"{active!r} is the only registered version"
    else:
        reasons = [
            f"{v.version}: {'marked unhealthy' if v.unhealthy else 'never served healthily'}"
            for v in sorted(others, key=lambda v: v.seq, reverse=True)
        ]
        why = "no other version is healthy (" + "; ".join(reasons) + ")"
    return (
        f"model {state.model!r}: cannot {doing} from {active!r}: {why}. Nothing was changed. "
        f"Instead: switch to fallback mode (model-registry mode {state.model} fallback), or register and "
        f"promote a fixed version; if a version was wrongly marked, clear it with "
        f"'model-registry mark-healthy {state.model} VERSION' (or mark-served-healthy), then retry."
    )


class Registry:
    """Model versions, the active version, traffic, serving mode, guardrail, tool switch, health marks and
    audit."""

    def __init__(self, backend: RegistryBackend) -> None:
        self.backend = backend

    # -- reads -------------------------------------------------------------------------------------

    def models(self) -> list[str]:
        return self.backend.models()

    def state(self, model: str) -> ModelState:
        return _require_model(self.backend.load(model), model)

    def version(self, model: str, version: str) -> VersionInfo:
        return _require_version(self.state(model), version)

    def generation(self, model: str) -> int:
        gen = self.backend.generation(model)
        if gen is None:
            raise UnknownModelError(f"unknown model {model!r} (register a version first)")
        return gen

    def serving_token(self, model: str) -> str:
        """A cheap value that changes whenever what a model server should serve changes: the generation,
        plus on MLflow the ``champion`` alias (which MLflow users can move outside the registry)."""
        token_of = getattr(self.backend, "serving_token", None)
        token = token_of(model) if token_of is not None else self.backend.generation(model)
        if token is None:
            raise UnknownModelError(f"unknown model {model!r} (register a version first)")
        return str(token)

    def history(self, model: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise RegistryError(f"limit must be a positive integer, got {limit!r}")
        return self.backend.history(model, limit)

    def check(self, model: str | None = None) -> list[str]:
        """Invariant violations (empty when consistent): storage integrity; per model exactly one active
        version that exists, traffic on known, non-negative versions summing to 100, and the newest audit
        entry's ``after`` equal to the current state (keys it predates count at their
        :data:`~model_registry.state.SUMMARY_DEFAULTS`)."""
        problems = list(self.backend.integrity_problems())
        for name in [model] if model is not None else self.models():
            st = self.state(name)
            known = {v.version for v in st.versions}
            if st.active_version is not None:
                if st.active_version not in known:
                    problems.append(f"{name}: active version {st.active_version!r} is not registered")
                total = sum(st.traffic.values())
                if abs(total - 100.0) > 1e-6:
                    problems.append(f"{name}: traffic weights sum to {total:g}, not 100")
            elif st.traffic:
                problems.append(f"{name}: traffic {st.traffic} without an active version")
            for v, w in st.traffic.items():
                if v not in known or w < 0:
                    problems.append(f"{name}: traffic weight {w} on {v!r} is invalid")
            if st.generation == 0:
                continue  # never changed through this registry (a plain MLflow model): no audit yet
            last = self.backend.history(name, 1)
            if not last or {**SUMMARY_DEFAULTS, **last[0].after} != st.summary():
                problems.append(f"{name}: newest audit entry does not match the current state")
        return problems

    # -- changes -----------------------------------------------------------------------------------

    def _apply(
        self, model: str, action: str, actor: str, reason: str, change: Change
    ) -> tuple[ModelState, AuditEntry]:
        _check_who(actor, reason)
        problems = name_problems("model", model)
        if problems:
            raise RegistryError(problems[0], problems)
        return self.backend.apply(model, action, actor.strip(), reason.strip(), change)

    def register(
        self,
        model: str,
        version: str,
        *,
        artifact_path: str,
        baseline: Baseline | None,
        metadata: Mapping[str, Any] | None = None,
        actor: str,
        reason: str,
        healthy: bool = False,
    ) -> VersionInfo:
        """Add a version (not promoted). ``healthy=True`` records it as having served healthily (LKG
        candidate), for a version already proven in production."""
        meta = dict(metadata or {})
        problems = name_problems("model", model) + name_problems("version", version)
        if not isinstance(artifact_path, str) or not artifact_path.strip():
            problems.append("artifact_path must be a non-empty string")
        if baseline is not None and not isinstance(baseline, Baseline):
            problems.append(f"baseline must be a Baseline or None, got {type(baseline).__name__}")
            baseline = None
        problems.extend(metadata_problems(meta, baseline))
        if problems:
            raise RegistryError(f"cannot register {model}/{version}: " + "; ".join(problems), problems)
        now = from_timestamp(time.time())

        def change(current: ModelState | None) -> ModelState:
            state = current or ModelState(model, None, {}, "normal", 0, 0, None, [])
            if state.version(version) is not None:
                raise ConflictError(
                    f"model {model!r} already has a version {version!r}; versions are immutable"
                )
            info = VersionInfo(model, version, artifact_path, now, meta, baseline, False, bool(healthy))
            return replace(state, versions=[*state.versions, info])

        state, _ = self._apply(model, "register", actor, reason, change)
        return _require_version(state, version)

    def promote(self, model: str, version: str, *, actor: str, reason: str) -> ModelState:
        """Make ``version`` active with 100 % of traffic; the outgoing active version, unless marked
        unhealthy, is recorded as having served healthily."""
        now = from_timestamp(time.time())

        def change(current: ModelState | None) -> ModelState:
            state = _require_model(current, model)
            info = _require_version(state, version)
            if info.unhealthy:
                raise RegistryError(
                    f"model {model!r}: version {version!r} is marked unhealthy and will not be promoted; "
                    f"if the mark is wrong, run 'model-registry mark-healthy {model} {version}' first"
                )
            old = state.active_version
            versions = state.versions
            if old is not None and old != version:
                old_info = _require_version(state, old)
                if not old_info.unhealthy:
                    versions = _set_flags(state, old, served_healthy=True)
            since = state.active_since if old == version else now
            return replace(
                state, active_version=version, traffic={version: 100.0}, active_since=since, versions=versions
            )

        return self._apply(model, "promote", actor, reason, change)[0]

    def rollback(
        self, model: str, *, actor: str, reason: str, expected_active: str | None = None
    ) -> RollbackResult:
        """Mark the active version unhealthy and make the last known good active with 100 % of traffic.

        Raises NoHealthyFallbackError (nothing changed) without a last known good, and ConflictError
        (nothing changed) when ``expected_active`` is given and is no longer the active version.
        """
        now = from_timestamp(time.time())
        moved: dict[str, str] = {}

        def change(current: ModelState | None) -> ModelState:
            state = _require_model(current, model)
            active = _require_active(state, "roll back")
            if expected_active is not None and active != expected_active:
                raise ConflictError(
                    f"model {model!r}: active version is {active!r}, not the expected {expected_active!r} "
                    "(someone else changed it, e.g. already rolled back); nothing was changed",
                    [{"active_version": active, "expected_active": expected_active}],
                )
            target = state.last_known_good
            if target is None:
                raise NoHealthyFallbackError(_no_fallback_message(state, "roll back"))
            moved.update(from_version=active, to_version=target)
            return replace(
                state,
                active_version=target,
                traffic={target: 100.0},
                active_since=now,
                versions=_set_flags(state, active, unhealthy=True),
            )

        state, entry = self._apply(model, "rollback", actor, reason, change)
        return RollbackResult(model, moved["from_version"], moved["to_version"], state, entry.id)

    def split(self, model: str, weights: Mapping[str, float], *, actor: str, reason: str) -> ModelState:
        """Route traffic by percent (must sum to 100); versions with weight 0 are dropped. The active
        version stays what it was; no version marked unhealthy may receive traffic."""
        problems = weights_problems(weights)
        if problems:
            raise RegistryError(f"invalid traffic split for {model!r}: " + "; ".join(problems), problems)
        traffic = {str(v): float(w) for v, w in weights.items() if float(w) > 0}

        def change(current: ModelState | None) -> ModelState:
            state = _require_model(current, model)
            _require_active(state, "split traffic")
            missing = [v for v in traffic if state.version(v) is None]
            if missing:
                raise UnknownVersionError(f"model {model!r} has no version(s) {', '.join(missing)}", missing)
            bad = [v for v in traffic if (info := state.version(v)) is not None and info.unhealthy]
            if bad:
                raise RegistryError(
                    f"model {model!r}: will not route traffic to version(s) marked unhealthy: "
                    + ", ".join(bad)
                )
            return replace(state, traffic=traffic)

        return self._apply(model, "split", actor, reason, change)[0]

    def split_to_last_known_good(self, model: str, weight: float, *, actor: str, reason: str) -> ModelState:
        """Send ``weight`` percent to the last known good and the rest to the active version."""
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 100:
            raise RegistryError(f"weight must be a percent in (0, 100], got {weight!r}")

        def change(current: ModelState | None) -> ModelState:
            state = _require_model(current, model)
            active = _require_active(state, "split traffic")
            target = state.last_known_good
            if target is None:
                raise NoHealthyFallbackError(_no_fallback_message(state, "split traffic"))
            traffic = {target: float(weight)}
            if weight < 100:
                traffic[active] = 100.0 - float(weight)
            return replace(state, traffic=traffic)

        return self._apply(model, "split_to_last_known_good", actor, reason, change)[0]

    def set_mode(self, model: str, mode: str, *, actor: str, reason: str) -> ModelState:
        """``fallback`` makes servers answer from simple rules / safe defaults; ``normal`` undoes it."""
        if mode not in MODES:
            raise RegistryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")

        def change(current: ModelState | None) -> ModelState:
            return replace(_require_model(current, model), mode=mode)

        return self._apply(model, "set_mode", actor, reason, change)[0]

    def set_guardrail(self, model: str, level: int, *, actor: str, reason: str) -> ModelState:
        """Output-filtering strictness, 0 (off) to 3 (strictest)."""
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 3:
            raise RegistryError(f"guardrail level must be an integer 0..3, got {level!r}")

        def change(current: ModelState | None) -> ModelState:
            return replace(_require_model(current, model), guardrail_level=level)

        return self._apply(model, "set_guardrail", actor, reason, change)[0]

    def set_tools_blocked(self, model: str, blocked: bool, *, actor: str, reason: str) -> ModelState:
        """The risky-tool switch: ``True`` makes servers refuse risky tool calls, ``False`` allows them."""
        if not isinstance(blocked, bool):
            raise RegistryError(f"tools_blocked must be True or False, got {blocked!r}")

        def change(current: ModelState | None) -> ModelState:
            return replace(_require_model(current, model), tools_blocked=blocked)

        return self._apply(model, "set_tools_blocked", actor, reason, change)[0]

    def _mark(
        self,
        model: str,
        version: str,
        action: str,
        actor: str,
        reason: str,
        *,
        unhealthy: bool | None = None,
        served_healthy: bool | None = None,
    ) -> ModelState:
        def change(current: ModelState | None) -> ModelState:
            state = _require_model(current, model)
            info = _require_version(state, version)
            if served_healthy and info.unhealthy:
                raise RegistryError(
                    f"model {model!r}: version {version!r} is marked unhealthy; clear that first "
                    f"(model-registry mark-healthy {model} {version})"
                )
            return replace(state, versions=_set_flags(state, version, unhealthy, served_healthy))

        return self._apply(model, action, actor, reason, change)[0]

    def mark_unhealthy(self, model: str, version: str, *, actor: str, reason: str) -> ModelState:
        """Never roll back, promote or route traffic to it again until ``mark_healthy``. Does not move
        traffic already on it (use rollback or split for that)."""
        return self._mark(model, version, "mark_unhealthy", actor, reason, unhealthy=True)

    def mark_healthy(self, model: str, version: str, *, actor: str, reason: str) -> ModelState:
        """Clear an unhealthy mark (does not make the version a last-known-good candidate by itself)."""
        return self._mark(model, version, "mark_healthy", actor, reason, unhealthy=False)

    def mark_served_healthy(self, model: str, version: str, *, actor: str, reason: str) -> ModelState:
        """Record that ``version`` served healthily, making it a last-known-good candidate."""
        return self._mark(model, version, "mark_served_healthy", actor, reason, served_healthy=True)
