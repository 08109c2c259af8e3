"""Verification of a containment: the runbook's ``verify: {query, for, timeout}`` as a pure state machine.

The orchestrator evaluates the query periodically (:func:`check_condition`) and feeds each outcome to
:meth:`VerificationState.observe`; the state is immutable and JSON-serialisable so it can be persisted
and resumed after a restart.

Outcomes: ``True`` (the query returned a non-empty result), ``False`` (empty result) or
:class:`Unknown` (the query could not be evaluated, with a reason).

Rules, evaluated on every observation:

* ``passed`` — the condition has been observed true continuously for ``for`` seconds, and that span was
  complete by the deadline (``started_at + timeout``). A ``False`` or ``Unknown`` observation breaks the
  streak: we only claim what we saw.
* at or after the deadline without a pass:
  ``failed`` if the last observation was ``False`` (the condition does not hold);
  ``timed_out`` otherwise — the last observation was ``Unknown``, nothing was observed at all, or the
  condition was true but had not yet held for ``for``. Both call for escalation; the reason says which.
* terminal states never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from receiver.errors import PrometheusError, TemplateError
from receiver.evidence import render_query
from receiver.prom import PrometheusClient

__all__ = ["Outcome", "Status", "Unknown", "VerificationState", "check_condition"]

Status = Literal["pending", "passed", "failed", "timed_out"]
_STATUSES: tuple[str, ...] = ("pending", "passed", "failed", "timed_out")


@dataclass(frozen=True)
class Unknown:
    """The condition could not be evaluated (Prometheus down, query rejected, template error)."""

    reason: str


Outcome = bool | Unknown


def _outcome_name(outcome: Outcome) -> str:
    if isinstance(outcome, Unknown):
        return "unknown"
    return "true" if outcome else "false"


@dataclass(frozen=True)
class VerificationState:
    """Where a verification stands. Times are epoch seconds."""

    started_at: float
    for_s: float
    timeout_s: float
    status: Status = "pending"
    true_since: float | None = None
    last_outcome: str | None = None
    last_observed_at: float | None = None
    observations: int = 0
    reason: str = "waiting for the first check"
    finished_at: float | None = None

    @classmethod
    def start(cls, now: float, for_s: float, timeout_s: float) -> VerificationState:
        if for_s < 0 or timeout_s <= 0:
            raise ValueError(f"verify needs for >= 0 and timeout > 0, got for={for_s}, timeout={timeout_s}")
        if for_s > timeout_s:
            raise ValueError(
                f"verify 'for' ({for_s:g}s) is longer than its timeout ({timeout_s:g}s): it could never pass"
            )
        return cls(started_at=now, for_s=for_s, timeout_s=timeout_s)

    @property
    def deadline(self) -> float:
        return self.started_at + self.timeout_s

    @property
    def done(self) -> bool:
        return self.status != "pending"

    def observe(self, now: float, outcome: Outcome) -> VerificationState:
        """Apply one outcome observed at ``now``; returns the new state."""
        if self.done:
            return self
        name = _outcome_name(outcome)
        state = replace(self, last_outcome=name, last_observed_at=now, observations=self.observations + 1)
        if outcome is True:
            since = self.true_since if self.true_since is not None else now
            state = replace(state, true_since=since)
            held = now - since
            if held >= self.for_s and since + self.for_s <= self.deadline:
                return replace(
                    state,
                    status="passed",
                    finished_at=now,
                    reason=f"condition held for {held:g}s (required {self.for_s:g}s)",
                )
            state = replace(state, reason=f"condition true for {held:g}s of the required {self.for_s:g}s")
        elif isinstance(outcome, Unknown):
            state = replace(state, true_since=None, reason=f"could not evaluate: {outcome.reason}")
        else:
            state = replace(state, true_since=None, reason="condition is false")
        return state.tick(now)

    def tick(self, now: float) -> VerificationState:
        """Apply the deadline without a new observation (call when the check itself could not run)."""
        if self.done or now < self.deadline:
            return self
        if self.last_outcome == "false":
            return replace(
                self,
                status="failed",
                finished_at=now,
                reason=f"condition still false at the {self.timeout_s:g}s deadline",
            )
        detail = self.reason if self.last_outcome else "the condition was never checked"
        return replace(
            self,
            status="timed_out",
            finished_at=now,
            reason=f"not verified within {self.timeout_s:g}s: {detail}",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "for_s": self.for_s,
            "timeout_s": self.timeout_s,
            "status": self.status,
            "true_since": self.true_since,
            "last_outcome": self.last_outcome,
            "last_observed_at": self.last_observed_at,
            "observations": self.observations,
            "reason": self.reason,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerificationState:
        status = data.get("status", "pending")
        if status not in _STATUSES:
            raise ValueError(f"unknown verification status {status!r}")
        try:
            return cls(
                started_at=float(data["started_at"]),
                for_s=float(data["for_s"]),
                timeout_s=float(data["timeout_s"]),
                status=status,
                true_since=_opt_float(data.get("true_since")),
                last_outcome=data.get("last_outcome"),
                last_observed_at=_opt_float(data.get("last_observed_at")),
                observations=int(data.get("observations", 0)),
                reason=str(data.get("reason", "")),
                finished_at=_opt_float(data.get("finished_at")),
            )
        except KeyError as exc:
            raise ValueError(f"verification state is missing {exc.args[0]!r}") from exc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def check_condition(client: PrometheusClient, query: str, context: Mapping[str, Any]) -> Outcome:
    """Evaluate a verify query once: non-empty result → True, empty → False, any failure → Unknown."""
    try:
        rendered = render_query(query, context)
    except TemplateError as exc:
        return Unknown(f"verify query invalid: {exc.message}")
    try:
        samples = client.query(rendered)
    except PrometheusError as exc:
        return Unknown(exc.message)
    return bool(samples)
