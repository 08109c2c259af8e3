"""Value types of the registry: versions, the serving state of a model, audit entries, rollback results.

All are frozen dataclasses with ``to_dict()`` giving plain JSON-ready dicts (timestamps as ISO-8601 UTC).

Last known good (LKG)
    The newest version *by registration order* that has ``served_healthy`` set, is not marked
    ``unhealthy``, and is not the active version. ``served_healthy`` is recorded in exactly three ways:

    * ``register(..., healthy=True)`` (CLI ``--healthy``), for a version already proven in production,
      e.g. the first version of a model brought under the registry;
    * a normal ``promote`` of another version: the outgoing active version, if it is not marked
      unhealthy, served healthily until it was replaced;
    * an explicit ``mark_served_healthy`` (e.g. after a canary or a clean on-call shift).

    A rollback marks the outgoing version unhealthy, so it never becomes LKG; ``mark_healthy`` only
    clears the unhealthy mark and does not by itself make a version LKG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from model_registry.baseline import Baseline

__all__ = [
    "MODES",
    "SUMMARY_DEFAULTS",
    "AuditEntry",
    "Mode",
    "ModelState",
    "RollbackResult",
    "VersionInfo",
    "from_timestamp",
    "last_known_good",
]

Mode = Literal["normal", "fallback"]
MODES: tuple[str, ...] = ("normal", "fallback")


#: Keys added to :meth:`ModelState.summary` after audit entries were first written, with the value they
#: stand for in an older entry that lacks them (a registry upgraded in place keeps its history).
SUMMARY_DEFAULTS: dict[str, Any] = {"tools_blocked": False}


def from_timestamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


@dataclass(frozen=True)
class VersionInfo:
    """One registered version. ``seq`` is the registration order (higher = newer)."""

    model: str
    version: str
    artifact_path: str
    registered_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    baseline: Baseline | None = None
    unhealthy: bool = False
    served_healthy: bool = False
    seq: int = 0

    def to_dict(self, *, with_baseline: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "artifact_path": self.artifact_path,
            "registered_at": _iso(self.registered_at),
            "metadata": dict(self.metadata),
            "unhealthy": self.unhealthy,
            "served_healthy": self.served_healthy,
            "seq": self.seq,
        }
        if with_baseline:
            out["baseline"] = None if self.baseline is None else self.baseline.to_dict()
        return out


def last_known_good(versions: Sequence[VersionInfo], active_version: str | None) -> str | None:
    """The LKG rule (see the module docstring); None when no version qualifies."""
    candidates = [v for v in versions if v.served_healthy and not v.unhealthy and v.version != active_version]
    if not candidates:
        return None
    return max(candidates, key=lambda v: v.seq).version


@dataclass(frozen=True)
class ModelState:
    """The serving state of one model. ``traffic`` maps version -> percent (sums to 100 once promoted).

    ``tools_blocked`` is the risky-tool switch for LLM models: servers refuse risky tool calls (web
    browsing, code execution, email, file writes) while it is set. It comes last, with a default, so the
    positional construction of older callers keeps working.
    """

    model: str
    active_version: str | None
    traffic: dict[str, float]
    mode: str
    guardrail_level: int
    generation: int
    active_since: datetime | None
    versions: list[VersionInfo]
    tools_blocked: bool = False

    @property
    def last_known_good(self) -> str | None:
        return last_known_good(self.versions, self.active_version)

    def version(self, version: str) -> VersionInfo | None:
        for v in self.versions:
            if v.version == version:
                return v
        return None

    def summary(self) -> dict[str, Any]:
        """The compact form recorded as ``before``/``after`` in the audit history."""
        return {
            "active_version": self.active_version,
            "traffic": dict(sorted(self.traffic.items())),
            "mode": self.mode,
            "guardrail_level": self.guardrail_level,
            "tools_blocked": self.tools_blocked,
            "last_known_good": self.last_known_good,
            "versions": [v.version for v in sorted(self.versions, key=lambda v: v.seq)],
            "unhealthy": sorted(v.version for v in self.versions if v.unhealthy),
            "served_healthy": sorted(v.version for v in self.versions if v.served_healthy),
            "generation": self.generation,
        }

    def to_dict(self, *, with_baselines: bool = False) -> dict[str, Any]:
        return {
            "model": self.model,
            "active_version": self.active_version,
            "traffic": dict(self.traffic),
            "mode": self.mode,
            "guardrail_level": self.guardrail_level,
            "tools_blocked": self.tools_blocked,
            "last_known_good": self.last_known_good,
            "generation": self.generation,
            "active_since": _iso(self.active_since),
            "versions": [v.to_dict(with_baseline=with_baselines) for v in self.versions],
        }


@dataclass(frozen=True)
class AuditEntry:
    """One change: what, who, why, and the state summary before and after it."""

    id: int
    at: datetime
    model: str
    action: str
    actor: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "model": self.model,
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did: ``from_version`` was marked unhealthy, ``to_version`` is now active at 100 %."""

    model: str
    from_version: str
    to_version: str
    state: ModelState
    audit_id: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "audit_id": self.audit_id,
            "state": self.state.to_dict(),
        }
