"""Run runbook steps through the ledger: condition, rendering, guards, dry-run, claim, and the restart rule.
A claimed step's attempts (lease heartbeat, timeout, retries, the unknown rule) are
:mod:`receiver.actions.attempts`; what a step came to is :mod:`receiver.actions.outcome`.

Exactly-once rule (see :mod:`receiver.actions.ledger`): a step runs only in the process that inserted its
ledger row. Restart rule (:meth:`ActionExecutor.resume_interrupted`), for rows left ``claimed``/``running``
past their lease by a crashed owner:

* ``claimed`` - the action was never started, so it is simply run now (any kind).
* ``running`` + an idempotent kind (traffic_split, fallback, guardrail) - the action re-reads the registry
  and compares it with the snapshot taken before the crash: already applied -> ``succeeded``; untouched ->
  applied now; changed by someone else -> ``interrupted``. In the recover phase these kinds set an absolute
  state, so recovery is simply run again.
* ``running`` + any other kind (rollback, silence, http, page, notify) - recorded as ``interrupted`` and
  escalated: it may or may not have happened, and running it again blindly could do it twice.

Unknown rule: a call sent without an answer (read timeout, connection lost after sending, an attempt hung
past its timeout) may have happened. An idempotent kind retries it; any other kind is never re-sent: the
step's outcome is ``unknown`` (timeline event ``unknown``, ledger state ``interrupted`` with reason
``unknown: ...``) and it is escalated.

A ``when`` that is false is *not* claimed (``skipped: condition`` on the timeline only), so the step can
still run if the incident's severity rises later. Likewise a step held by its approval gate (the ``gate``
hook, :mod:`receiver.approvals`) is not claimed: its ledger claim happens only once it is approved (or its
gate timed out with ``proceed``), so the ledger's exactly-once holds for gated steps too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from receiver.actions.attempts import Attempts
from receiver.actions.base import Action, ActionContext, ActionResult, ActionSettings
from receiver.actions.ledger import GuardPolicy, Ledger, LedgerKey, LedgerRow
from receiver.actions.outcome import StepEvents, StepOutcome, describe, redact
from receiver.actions.registry import ActionRegistry
from receiver.actions.steps import StepSpec
from receiver.errors import (
    ActionParamError,
    TemplateError,
)
from receiver.templating import evaluate

__all__ = ["PHASES", "ActionExecutor", "Gate", "StepOutcome", "StepSpec", "redact"]

PHASES = ("contain", "recover", "escalate")


#: ``gate(key, step, ctx, shown_params, dry_run)``: an outcome to return instead of running the step (held
#: for approval, denied, or the dry run's account of the gate), or None to go ahead and claim it
Gate = Callable[[LedgerKey, StepSpec, ActionContext, dict[str, Any], bool], "StepOutcome | None"]


class ActionExecutor:
    """Runs steps exactly once per (incident, phase, step, kind) and reports every attempt."""

    def __init__(
        self,
        ledger: Ledger,
        kinds: ActionRegistry,
        settings: ActionSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        owner: str | None = None,
        on_timeline: Callable[[dict[str, Any]], None] | None = None,
        grace_seconds: float = 2.0,
        max_workers: int = 8,
        lease_seconds: float = 15.0,
        gate: Gate | None = None,
    ) -> None:
        self.ledger = ledger
        self.gate = gate
        self.kinds = kinds
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.owner = owner or f"{uuid.uuid4().hex[:12]}"
        self.on_timeline = on_timeline
        self.grace_seconds = grace_seconds
        #: a claimed/running step's lease; renewed every third of it while the step runs, so a replica
        #: that dies mid-step loses the step within one lease and a survivor's sweep takes it over
        self.lease_seconds = lease_seconds
        self.events = StepEvents(clock, on_timeline)
        self.attempts = Attempts(
            ledger,
            settings,
            self.events,
            clock=clock,
            sleep=sleep,
            owner=self.owner,
            lease_seconds=lease_seconds,
            grace_seconds=grace_seconds,
            max_workers=max_workers,
        )

    def close(self) -> None:
        """Stop the worker pool (attempts still running finish on their own timeouts)."""
        self.attempts.close()

    # -- public API -----------------------------------------------------------------------------------
    def run_steps(
        self,
        steps: Sequence[StepSpec],
        ctx: ActionContext,
        *,
        phase: str = "contain",
        automatic: bool = True,
        dry_run: bool = False,
    ) -> list[StepOutcome]:
        """Run steps in order, one change at a time."""
        return [self.run_step(step, ctx, phase=phase, automatic=automatic, dry_run=dry_run) for step in steps]

    def run_step(
        self,
        step: StepSpec,
        ctx: ActionContext,
        *,
        phase: str = "contain",
        automatic: bool = True,
        dry_run: bool = False,
    ) -> StepOutcome:
        """Run one step unless the ledger says it already ran (then ``duplicate=True``, no timeline)."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        key = LedgerKey(ctx.incident_id, phase, step.id, step.kind)
        ctx = ctx.narrow(
            step_id=step.id,
            phase=phase,
            now=self._now(),
            timeout=step.timeout or self.settings.default_timeout,
        )
        try:
            action = self.kinds.get(step.kind)
        except ActionParamError as exc:
            return self._unclaimed(key, "failed", exc.message, error=exc.message)
        if step.when is not None:
            try:
                decision = bool(evaluate(step.when, ctx.template_context()))
            except TemplateError as exc:
                return self._unclaimed(key, "failed", f"condition failed: {exc.message}", error=exc.message)
            if not decision:
                return self._unclaimed(
                    key, "skipped", f"skipped: condition {step.when!r} is false", reason="condition"
                )
        prior: LedgerRow | None = None
        defaults: dict[str, Any] = {}
        if phase == "recover":
            prior = self._prior_containment(ctx.incident_id, step, dry_run=self._dry(step, dry_run))
            if prior is None:
                return self._unclaimed(
                    key,
                    "skipped",
                    f"nothing to recover: no {step.kind} containment succeeded for this incident",
                    reason="nothing_to_recover",
                )
            # A recovery step's parameters default to its containment's (already rendered: not re-rendered).
            defaults = {k: v for k, v in prior.params.items() if k != "of"}
        raw = {k: v for k, v in step.params.items() if k != "of"}
        try:
            params = action.validate({**defaults, **action.render(raw, ctx.template_context())})
        except (TemplateError, ActionParamError) as exc:
            return self._unclaimed(key, "failed", f"invalid parameters: {exc.message}", error=exc.message)
        if step.approve is not None and self.gate is not None:
            held = self.gate(key, step, ctx, redact(params), self._dry(step, dry_run))
            if held is not None:
                return held
        return self._claim_and_run(
            key, action, params, ctx, step, automatic=automatic, dry_run=self._dry(step, dry_run), prior=prior
        )

    def recover(
        self,
        ctx: ActionContext,
        steps: Sequence[StepSpec] | None = None,
        *,
        automatic: bool = False,
        dry_run: bool = False,
    ) -> list[StepOutcome]:
        """Run the runbook's recovery ``steps``; without steps, undo every successful containment of the
        incident, newest first, each with the data its containment recorded (rollbacks are not undone)."""
        if steps is not None:
            return self.run_steps(steps, ctx, phase="recover", automatic=automatic, dry_run=dry_run)
        wanted = ("succeeded", "dry_run") if (dry_run or self.settings.dry_run) else ("succeeded",)
        rows = [
            r
            for r in self.ledger.rows(ctx.incident_id, "contain")
            if r.state in wanted
            and r.key.kind in self.kinds.kinds()
            and self.kinds.get(r.key.kind).recoverable
        ]
        undo = [
            StepSpec(id=r.key.step_id, kind=r.key.kind, params={**r.params, "of": r.key.step_id})
            for r in reversed(rows)
        ]
        return self.run_steps(undo, ctx, phase="recover", automatic=automatic, dry_run=dry_run)

    def resume_interrupted(self, make_context: Callable[[LedgerRow], ActionContext]) -> list[StepOutcome]:
        """Apply the restart rule (module docstring) to every expired ``claimed``/``running`` row."""
        outcomes = []
        for row in self.ledger.expired(self.clock()):
            try:
                action = self.kinds.get(row.key.kind)
            except ActionParamError:
                action = None
            if not self.ledger.take_over(
                row, owner=self.owner, now=self.clock(), lease_until=self.clock() + self.lease_seconds
            ):
                continue  # another process is resuming it
            ctx = make_context(row).narrow(
                step_id=row.key.step_id,
                phase=row.key.phase,
                now=self._now(),
                timeout=self.settings.default_timeout,
            )
            outcomes.append(self._resume(row, action, ctx))
        return outcomes

    # -- internals ------------------------------------------------------------------------------------
    def _dry(self, step: StepSpec, dry_run: bool) -> bool:
        return dry_run or step.dry_run or self.settings.dry_run

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _prior_containment(self, incident_id: str, step: StepSpec, *, dry_run: bool) -> LedgerRow | None:
        wanted = ("succeeded", "dry_run") if dry_run else ("succeeded",)
        of = step.params.get("of")
        rows = [
            r
            for r in self.ledger.rows(incident_id, "contain")
            if r.key.kind == step.kind and r.state in wanted and (of is None or r.key.step_id == of)
        ]
        return rows[-1] if rows else None

    def _entry(self, key: LedgerKey, event: str, **extra: Any) -> dict[str, Any]:
        return self.events.entry(key, event, **extra)

    def _unclaimed(
        self, key: LedgerKey, state: str, summary: str, *, error: str | None = None, reason: str | None = None
    ) -> StepOutcome:
        entry = self._entry(key, state, summary=summary, error=error, reason=reason)
        return StepOutcome(key, state, summary, error=error, timeline=[entry])

    def _claim_and_run(
        self,
        key: LedgerKey,
        action: Action,
        params: dict[str, Any],
        ctx: ActionContext,
        step: StepSpec,
        *,
        automatic: bool,
        dry_run: bool,
        prior: LedgerRow | None,
    ) -> StepOutcome:
        retries = self.settings.default_retries if step.retries is None else step.retries
        now = self.clock()
        shown = redact(params)
        if "of" in step.params:
            shown["of"] = step.params["of"]
        # the context's settings: a runbook's own ``cooldown`` narrows them (the executor's are the defaults)
        policy = ctx.settings
        guard = GuardPolicy(policy.cooldown_seconds, policy.flap_max, policy.flap_window_seconds)
        claim = self.ledger.claim(
            key,
            model=ctx.model,
            runbook_id=ctx.runbook_id,
            params=shown,
            owner=self.owner,
            now=now,
            lease_until=now + self.lease_seconds,
            containment=action.containment,
            automatic=automatic,
            dry_run=dry_run,
            guard=guard,
        )
        if claim.status == "duplicate":
            row = claim.row
            return StepOutcome(
                key,
                row.state,
                row.reason or "",
                data=row.result or {},
                error=row.error,
                attempts=row.attempts,
                duplicate=True,
                params=row.params,
            )
        if claim.status == "dry_run":
            what = "recover" if key.phase == "recover" else "run"
            summary = f"dry run: would {what} {key.kind} with {shown}"
            return StepOutcome(
                key,
                "dry_run",
                summary,
                params=shown,
                timeline=[self._entry(key, "dry_run", summary=summary, params=shown)],
            )
        if claim.status == "skipped":
            reason = claim.row.reason or "skipped"
            return StepOutcome(
                key,
                "skipped",
                reason,
                escalate=reason,
                params=shown,
                timeline=[
                    self._entry(
                        key,
                        "skipped",
                        summary=reason,
                        reason=reason.split(":", 1)[0],
                        params=shown,
                        escalate=reason,
                    )
                ],
            )

        row_id = claim.row.id
        timeline = [self._entry(key, "claimed", params=shown, automatic=automatic)]
        try:
            snapshot = action.snapshot(params, ctx) if key.phase == "contain" else {}
        except Exception as exc:
            error = describe(exc)
            self.ledger.finish(row_id, "failed", now=self.clock(), error=error, attempts=0)
            timeline.append(self._entry(key, "failed", error=f"could not read state before acting: {error}"))
            return StepOutcome(key, "failed", error, error=error, params=shown, timeline=timeline)
        self.ledger.start(
            row_id, snapshot=snapshot, now=self.clock(), lease_until=self.clock() + self.lease_seconds
        )

        def invoke() -> ActionResult:
            if key.phase == "recover":
                assert prior is not None
                return action.recover(params, prior.result or {}, ctx)
            return action.run(params, ctx, snapshot)

        return self.attempts.run(key, action, row_id, invoke, ctx.timeout, retries, shown, timeline)

    def _resume(self, row: LedgerRow, action: Action | None, ctx: ActionContext) -> StepOutcome:
        key = row.key
        timeline = [self._entry(key, "resumed", state_found=row.state, owner_found=row.owner)]
        if action is None:
            return self._interrupt(row, "unknown action kind; cannot resume", timeline)
        try:
            params = action.validate({k: v for k, v in row.params.items() if k != "of"})
        except ActionParamError as exc:
            return self._interrupt(
                row, f"interrupted: recorded parameters no longer valid: {exc.message}", timeline
            )
        timeout, retries = ctx.timeout, self.settings.default_retries
        if row.state == "claimed":  # never started: nothing happened yet, run it now
            snapshot = action.snapshot(params, ctx) if key.phase == "contain" else {}
            self.ledger.start(
                row.id, snapshot=snapshot, now=self.clock(), lease_until=self.clock() + self.lease_seconds
            )
            invoke = self._resume_invocation(row, action, params, ctx, snapshot)
            return self.attempts.run(key, action, row.id, invoke, timeout, retries, row.params, timeline)
        if not action.idempotent:
            return self._interrupt(
                row,
                f"interrupted: {key.kind} was running when its owner stopped; it may "
                "or may not have taken effect, so it is not run again automatically",
                timeline,
            )
        if key.phase == "recover":  # recovery sets an absolute state: simply run it again
            invoke = self._resume_invocation(row, action, params, ctx, {})
            return self.attempts.run(key, action, row.id, invoke, timeout, retries, row.params, timeline)
        try:
            result = action.reconcile(params, ctx, row.snapshot or {})
        except Exception as exc:
            return self._interrupt(row, f"interrupted: re-checking state failed: {describe(exc)}", timeline)
        if result is None:
            return self._interrupt(
                row,
                f"interrupted: the state of {ctx.model!r} changed since {key.kind} "
                "started; not acting again automatically",
                timeline,
            )
        return self.attempts.done(key, row.id, result, row.attempts, row.params, timeline, event="reconciled")

    def _resume_invocation(
        self,
        row: LedgerRow,
        action: Action,
        params: dict[str, Any],
        ctx: ActionContext,
        snapshot: Mapping[str, Any],
    ) -> Callable[[], ActionResult]:
        """How a resumed row is (re)run: recovery with its containment's result, else a normal run."""
        if row.key.phase == "recover":
            prior = self._prior_for_row(row)
            return lambda: action.recover(params, prior, ctx)
        return lambda: action.run(params, ctx, snapshot)

    def _prior_for_row(self, row: LedgerRow) -> dict[str, Any]:
        of = row.params.get("of", row.key.step_id)
        found = [
            r
            for r in self.ledger.rows(row.key.incident_id, "contain")
            if r.key.kind == row.key.kind and r.key.step_id == of and r.state == "succeeded"
        ]
        return (found[-1].result or {}) if found else {}

    def _interrupt(self, row: LedgerRow, reason: str, timeline: list[dict[str, Any]]) -> StepOutcome:
        self.ledger.finish(row.id, "interrupted", now=self.clock(), reason=reason, error=reason)
        timeline.append(self._entry(row.key, "interrupted", summary=reason, escalate=reason))
        return StepOutcome(
            row.key,
            "interrupted",
            reason,
            error=reason,
            escalate=reason,
            attempts=row.attempts,
            params=row.params,
            timeline=timeline,
        )
