"""The ``approve`` block of a runbook step, typed: when a step waits for a person, how long, then what.

``approve: {when: 'level == "SEV3"', timeout: 10m, on_timeout: proceed | skip, role: responder}``: when
``when`` holds (or is absent) the step is not run but an approval is requested; the first decision wins; with
no decision before ``timeout`` the step runs (``proceed``) or is skipped (``skip``). ``role`` is the least
role allowed to decide (viewer < responder < admin). The schema checks the shape; :meth:`from_mapping`
is what the gate reads at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receiver.runbooks.durations import parse_duration

__all__ = ["APPROVAL_ROLES", "ON_TIMEOUT", "ApprovalSpec", "role_allows"]

#: roles in increasing power; a decision needs at least the gate's role
APPROVAL_ROLES: tuple[str, ...] = ("viewer", "responder", "admin")
ON_TIMEOUT: tuple[str, ...] = ("proceed", "skip")


def role_allows(have: str | None, need: str) -> bool:
    """Whether a person with role ``have`` may do what needs ``need`` (unknown roles may do nothing)."""
    if have not in APPROVAL_ROLES or need not in APPROVAL_ROLES:
        return False
    return APPROVAL_ROLES.index(have) >= APPROVAL_ROLES.index(need)


@dataclass(frozen=True)
class ApprovalSpec:
    timeout: str
    timeout_seconds: float
    on_timeout: str
    role: str = "responder"
    when: str | None = None

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "approve") -> ApprovalSpec:
        """Parse the block; raises ValueError naming the field (the linter reports it with file:line)."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a mapping with timeout and on_timeout, got {raw!r}")
        unknown = sorted(set(raw) - {"when", "timeout", "on_timeout", "role"})
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
        timeout = raw.get("timeout")
        if not isinstance(timeout, str) or not timeout:
            raise ValueError(f"{where}.timeout: expected a duration such as 10m, got {timeout!r}")
        try:
            seconds = parse_duration(timeout)
        except ValueError:
            raise ValueError(f"{where}.timeout: {timeout!r} is not a duration such as 10m") from None
        if seconds <= 0:
            raise ValueError(f"{where}.timeout: must be longer than 0s")
        on_timeout = raw.get("on_timeout")
        if on_timeout not in ON_TIMEOUT:
            raise ValueError(f"{where}.on_timeout: expected proceed or skip, got {on_timeout!r}")
        role = raw.get("role", "responder")
        if role not in APPROVAL_ROLES[1:]:
            raise ValueError(f"{where}.role: expected responder or admin, got {role!r}")
        when = raw.get("when")
        if when is not None and (not isinstance(when, str) or not when.strip()):
            raise ValueError(f"{where}.when: expected an expression string, got {when!r}")
        return cls(timeout, seconds, str(on_timeout), str(role), when)

    def describe(self) -> str:
        return f"{self.role} approval within {self.timeout}, then {self.on_timeout}"
