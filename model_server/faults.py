"""Fault injection for drills: what to break, optionally for one version only.

A :class:`FaultSpec` is validated from JSON (every problem named); :class:`FaultBoard` holds one spec for
all versions (scope ``"*"``) and one per version, and merges them per request (the larger value of each
field wins, so "v2 is slow" plus "everything errors 1 %" both apply to v2).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["ALL_VERSIONS", "MAX_LATENCY_SECONDS", "FaultBoard", "FaultSpec", "FaultSpecError"]

ALL_VERSIONS = "*"
MAX_LATENCY_SECONDS = 30.0
_RATES = ("error_rate", "corrupt_rate", "toxic_rate", "null_rate")


class FaultSpecError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid fault spec: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class FaultSpec:
    """``latency_seconds`` added per request; each ``*_rate`` is a probability in [0, 1] per request:
    error (answer 500), corrupt (score inverted to 1 - score), toxic (reply replaced by a toxic one),
    null (one random input feature set to null before validation)."""

    latency_seconds: float = 0.0
    error_rate: float = 0.0
    corrupt_rate: float = 0.0
    toxic_rate: float = 0.0
    null_rate: float = 0.0

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self))

    def merge(self, other: FaultSpec) -> FaultSpec:
        return FaultSpec(**{f.name: max(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: Any) -> tuple[str, FaultSpec]:
        """Parse ``{"version"?: str, "latency_seconds"?: ..., "<x>_rate"?: ...}`` into (scope, spec)."""
        if not isinstance(body, dict):
            raise FaultSpecError([f"body must be a JSON object, got {type(body).__name__}"])
        problems: list[str] = []
        known = {f.name for f in fields(cls)} | {"version"}
        problems += [f"unknown field {k!r} (known: {sorted(known)})" for k in body if k not in known]
        scope = body.get("version", ALL_VERSIONS)
        if not isinstance(scope, str) or not scope:
            problems.append("version must be a non-empty string")
        values: dict[str, float] = {}
        for f in fields(cls):
            if f.name not in body:
                continue
            raw = body[f.name]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                problems.append(f"{f.name} must be a number, got {raw!r}")
                continue
            value = float(raw)
            limit = MAX_LATENCY_SECONDS if f.name == "latency_seconds" else 1.0
            if not 0.0 <= value <= limit:
                problems.append(f"{f.name} must be between 0 and {limit}, got {value}")
                continue
            values[f.name] = value
        if problems:
            raise FaultSpecError(problems)
        return str(scope), cls(**values)


class FaultBoard:
    """Thread-safe set of active faults by scope."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, FaultSpec] = {}
        self._cache: dict[str, FaultSpec] = {}

    def set(self, scope: str, spec: FaultSpec) -> None:
        """Replace the faults of ``scope`` (a version or ``"*"``); an all-zero spec clears it."""
        with self._lock:
            if spec.active:
                self._specs[scope] = spec
            else:
                self._specs.pop(scope, None)
            self._cache = {}

    def clear(self, scope: str | None = None) -> None:
        with self._lock:
            if scope is None:
                self._specs.clear()
            else:
                self._specs.pop(scope, None)
            self._cache = {}

    def for_version(self, version: str) -> FaultSpec:
        cache = self._cache
        found = cache.get(version)
        if found is not None:
            return found
        with self._lock:
            spec = self._specs.get(ALL_VERSIONS, FaultSpec()).merge(self._specs.get(version, FaultSpec()))
            self._cache[version] = spec
        return spec

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {scope: spec.to_dict() for scope, spec in sorted(self._specs.items())}
