"""Approval gates: a runbook step that waits for a person, with a timeout and a default.

::

    step with approve, its ``when`` holds ─► not run, not claimed: approval requested (timeline) + timer
        decide(approve) ─► first decision wins (conditional UPDATE in the store) ─► timeline: who/when/why
                         └► the step runs through the executor: its ledger claim happens only now
        decide(deny)    ─► the step is skipped (timeline, once)
        timer "approval" ─► due approvals expire ─► on_timeout proceed: run; skip: skip
        sweep           ─► decided approvals whose consequence was not recorded (a crash in between): apply

Exactly once: the decision is a single winning UPDATE; running the step goes through the action ledger (one
row per incident, phase, step), and every timeline entry and message carries a dedupe key, so re-applying a
decision (two replicas, a retry, the sweep after a restart) never acts or speaks twice. The gated step is
kept in the approval row as it was requested, so a decision made after a restart (or on another replica)
runs exactly what was asked about.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from receiver.actions.base import ActionContext
from receiver.actions.executor import StepOutcome, StepSpec
from receiver.actions.ledger import LedgerKey
from receiver.actions.outcome import action_entry
from receiver.errors import NotFound, PayloadError, TemplateError
from receiver.runbooks.approval import ApprovalSpec
from receiver.store.base import Approval, Store
from receiver.store.records import Timer
from receiver.templating import evaluate

__all__ = ["ApprovalDesk", "GateHost"]

log = logging.getLogger("receiver.approvals")

#: outbox sequence numbers of decision messages (clear of the responder's own ranges)
_DECISION_SEQUENCE = 1_000_000


class GateHost(Protocol):
    """What the desk needs from the responder: run a step now, say something on the incident's channels."""

    def run_approved_step(self, incident_id: int, step: StepSpec, phase: str) -> StepOutcome | None: ...

    def say(self, incident_id: int, summary: str, sequence: int) -> None: ...


def _entry(key: LedgerKey, event: str, **extra: Any) -> dict[str, Any]:
    """A timeline entry shaped like the executor's, so the responder records it the same way."""
    return action_entry(key, event, datetime.now(UTC), **extra)


class ApprovalDesk:
    """The gate hook of the executor, the ``approval`` timer, decisions and the sweep."""

    def __init__(
        self,
        store: Store,
        host: GateHost,
        *,
        clock: Callable[[], float] = time.time,
        time_scale: float = 1.0,
    ) -> None:
        self.store, self.host, self.clock, self.time_scale = store, host, clock, time_scale
        self.rows = store.approvals

    # -- the executor's gate ---------------------------------------------------------------------------
    def gate(
        self, key: LedgerKey, step: StepSpec, ctx: ActionContext, shown: dict[str, Any], dry_run: bool
    ) -> StepOutcome | None:
        """None: go ahead and claim the step; otherwise the outcome to report instead of running it."""
        try:
            spec = ApprovalSpec.from_mapping(step.approve, f"step {step.id}: approve")
        except ValueError as exc:
            return self._outcome(key, "failed", str(exc), error=str(exc))
        incident_id = int(key.incident_id)
        approval = self.rows.find(incident_id, key.phase, key.step_id)
        if approval is not None:
            # asked before: that decision rules (a denial stands even if the gate's condition no longer
            # holds, e.g. after the severity rose); go ahead if it opened, else nothing new to say
            held = self._held(key, approval)
            if held is not None:
                held.duplicate, held.timeline = True, []
            return held
        if spec.when is not None:
            try:
                needed = bool(evaluate(spec.when, ctx.template_context()))
            except TemplateError as exc:
                message = f"approval condition failed: {exc.message}"
                return self._outcome(key, "failed", message, error=exc.message)
            if not needed:
                return None
        summary = _summary(key, ctx, shown)
        if dry_run:
            text = f"dry run: would ask for {spec.describe()} before: {summary}"
            return self._outcome(key, "dry_run", text, params=shown, gate=spec.describe())
        return self._held(key, self._request(key, step, spec, summary))

    def _request(self, key: LedgerKey, step: StepSpec, spec: ApprovalSpec, summary: str) -> Approval:
        incident_id = int(key.incident_id)
        timeout_ts = self.clock() + spec.timeout_seconds * self.time_scale
        approval, created = self.rows.request(
            incident_id=incident_id,
            phase=key.phase,
            step_id=key.step_id,
            kind=key.kind,
            summary=summary,
            role=spec.role,
            timeout_ts=timeout_ts,
            on_timeout=spec.on_timeout,
            step=step.raw or {"id": step.id, "action": step.kind, **step.params, "approve": step.approve},
        )
        if created:
            self.store.incidents.add_timeline(
                incident_id,
                "approval_requested",
                f"approval needed ({spec.role}, within {spec.timeout}, then {spec.on_timeout}): {summary}",
                approval.to_json(),
                dedupe_key=f"approval:{approval.id}:requested",
            )
            self.arm(incident_id)
        return approval

    def _held(self, key: LedgerKey, approval: Approval) -> StepOutcome | None:
        if approval.runs_step:
            return None
        if approval.state == "pending":
            summary = f"waiting for approval {approval.id} ({approval.role}) until {approval.timeout_at}"
            return StepOutcome(key, "awaiting_approval", summary, data={"approval": approval.id})
        return self._outcome(key, "skipped", _skip_reason(approval), reason="approval")

    def _outcome(
        self, key: LedgerKey, state: str, summary: str, *, event: str | None = None, **extra: Any
    ) -> StepOutcome:
        entry = _entry(key, event or state, summary=summary, **extra)
        return StepOutcome(key, state, summary, error=extra.get("error"), timeline=[entry])

    # -- decisions --------------------------------------------------------------------------------------
    def decide(self, incident_id: int, approval_id: int, decision: str, actor: str, reason: str = "") -> bool:
        """Record a person's decision; True when it won (then its consequence is carried out, once)."""
        if decision not in ("approve", "deny"):
            raise PayloadError(f"decision: expected approve or deny, got {decision!r}")
        current = self.rows.get(approval_id)
        if current.incident_id != incident_id:
            raise NotFound(f"approval {approval_id} does not belong to incident {incident_id}")
        approval, won = self.rows.decide(approval_id, decision, actor, reason)
        if not won:
            return False
        verb = "approved" if decision == "approve" else "denied"
        self.store.incidents.add_timeline(
            incident_id,
            "approval_decided",
            f"{verb} by {actor}" + (f" ({reason})" if reason else "") + f": {approval.summary}",
            {**approval.to_json(), "actor": actor},
            dedupe_key=f"approval:{approval.id}:decided",
        )
        self.apply(approval)
        return True

    def apply(self, approval: Approval) -> None:
        """Carry out a decision: run the gated step (approved, or expired with proceed) or skip it."""
        incident_id = approval.incident_id
        detail = self.store.get_incident(incident_id)
        if approval.runs_step and detail.incident.state in ("open", "contained"):
            step = StepSpec.from_mapping(self.rows.step_of(approval.id), 0)
            outcome = self.host.run_approved_step(incident_id, step, approval.phase)
            result = f"{approval.kind} {outcome.state}" if outcome is not None else "not run"
        else:
            reason = _skip_reason(approval)
            if approval.runs_step:
                reason = f"not run: the incident is {detail.incident.state}"
            key = LedgerKey(str(incident_id), approval.phase, approval.step_id, approval.kind)
            entry = _entry(key, "skipped", summary=reason, reason="approval")
            self.store.incidents.add_timeline(
                incident_id,
                "action",
                f"{approval.phase} {approval.kind} [{approval.step_id}]: {reason}",
                entry,
                dedupe_key=f"approval:{approval.id}:skipped",
            )
            result = f"{approval.kind} skipped"
        self.rows.mark_applied(approval.id)
        who = "timeout" if approval.state == "expired" else approval.decided_by
        self.host.say(
            incident_id,
            f"Approval {approval.id} {approval.state} ({who}): {approval.summary} → {result}.",
            _DECISION_SEQUENCE + approval.id,
        )
        self.arm(incident_id)

    # -- the timer and the sweep -------------------------------------------------------------------------
    def arm(self, incident_id: int) -> None:
        """(Re)arm the incident's ``approval`` timer at its earliest pending timeout."""
        due = self.rows.next_timeout(incident_id)
        if due is not None:
            self.store.timers.schedule(incident_id, "approval", due, replace=True)

    def on_timer(self, timer: Timer) -> tuple[float, dict[str, Any]] | None:
        self._expire(timer.incident_id)
        due = self.rows.next_timeout(timer.incident_id)
        return None if due is None else (due, {})

    def _expire(self, incident_id: int | None) -> None:
        for approval in self.rows.expire_due(self.clock(), incident_id):
            self.store.incidents.add_timeline(
                approval.incident_id,
                "approval_expired",
                f"no decision within the timeout: {approval.on_timeout} ({approval.summary})",
                approval.to_json(),
                dedupe_key=f"approval:{approval.id}:expired",
            )
            self.apply(approval)

    def settle(self) -> int:
        """The sweep's backstop: expire what is due even if its timer was lost (a gate requested while the
        timer completed), and apply decisions whose consequence is not recorded yet (a crash in between)."""
        self._expire(None)
        done = 0
        for approval in self.rows.unapplied():
            try:
                self.apply(approval)
                done += 1
            except Exception:
                log.exception("could not apply the decision on approval %d", approval.id)
        return done


def _summary(key: LedgerKey, ctx: ActionContext, shown: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in shown.items() if v not in (None, {}, []))
    return f"{key.kind} of {ctx.model or 'incident ' + key.incident_id}" + (f" ({params})" if params else "")


def _skip_reason(approval: Approval) -> str:
    if approval.state == "denied":
        why = f": {approval.reason}" if approval.reason else ""
        return f"skipped: denied by {approval.decided_by}{why}"
    return "skipped: no decision before the approval timeout (on_timeout: skip)"
