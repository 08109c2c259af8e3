"""One runbook step, parsed: ``{action: traffic_split, weight: 50, when: '...', timeout: 10s, retries: 2}``.

Its own module so that runbooks can be typed at load time (``receiver.runbooks.model``) without importing
the executor that runs the steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from receiver.actions.base import parse_duration
from receiver.errors import ActionParamError

__all__ = ["StepSpec"]

_RESERVED = ("action", "id", "when", "dry_run", "timeout", "retries", "approve")


@dataclass(frozen=True)
class StepSpec:
    """One runbook step: ``{action: traffic_split, weight: 50, when: '...', timeout: 10s, retries: 2}``."""

    id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    when: str | None = None
    dry_run: bool = False
    timeout: float | None = None
    retries: int | None = None
    approve: dict[str, Any] | None = None  # the approval gate block, read by the ``gate`` hook
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # as written, with its id

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], index: int) -> StepSpec:
        """Parse a runbook step; the id defaults to ``<kind>-<index>`` (stable while the runbook is)."""
        kind = raw.get("action")
        if not isinstance(kind, str) or not kind:
            raise ActionParamError(f"step {index}: 'action' must name an action kind, got {kind!r}")
        step_id = raw.get("id", f"{kind}-{index}")
        when = raw.get("when")
        if when is not None and not isinstance(when, str):
            raise ActionParamError(f"step {step_id}: 'when' must be an expression string, got {when!r}")
        retries = raw.get("retries")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
            raise ActionParamError(
                f"step {step_id}: 'retries' must be a non-negative integer, got {retries!r}"
            )
        timeout = raw.get("timeout")
        approve = raw.get("approve")
        if approve is not None and not isinstance(approve, Mapping):
            raise ActionParamError(f"step {step_id}: 'approve' must be a mapping, got {approve!r}")
        return cls(
            id=str(step_id),
            approve=dict(approve) if approve is not None else None,
            raw={**raw, "id": str(step_id)},
            kind=kind,
            when=when,
            dry_run=bool(raw.get("dry_run", False)),
            timeout=None if timeout is None else parse_duration(timeout, f"step {step_id}: timeout"),
            retries=retries,
            params={k: v for k, v in raw.items() if k not in _RESERVED},
        )
