"""The responder: what the receiver *does* about an incident, the way the playbook prescribes.

::

    opened ──► evidence (Prometheus, in the background, one overall budget) ┐
           └─► contain steps (ledger: at most once; never wait for evidence) ┴─► "Investigating" message
               └─► timers: verify (after containment), escalate (unacknowledged after escalate.after),
                           update (every comms.cadence)
    severity_raised ──► contain steps again (a step whose ``when`` now holds runs; done steps never rerun)
    resolved ──► cancel timers, resolve pages, "Resolved" message (containment stays: recovery is explicit)

    timer verify   ─► check the runbook's verify query ─► passed: state contained + "Contained"
                                                        failed / timed out: escalate
    timer escalate ─► not acknowledged: page (escalate.page), raise severity (escalate.upgrade_to), message
    timer update   ─► status update on the cadence while the incident is open or contained
    timer approval ─► approval gates past their timeout proceed or skip (:mod:`receiver.approvals`)
    decide         ─► a person approves or denies a gated step: the first decision wins, applied once
    acknowledge / resolve here ─► PagerDuty acknowledge / resolve (when a page was sent), once

Every step is idempotent: actions go through the ledger, messages carry dedupe keys in the outbox, timeline
entries carry dedupe keys, timers are one row per (incident, kind). So a repeated notification, an HA
duplicate, a retry after a failure or a restart mid-way never acts or speaks twice.

Runbook durations are multiplied by ``time_scale`` (1.0 in production; drills compress time with it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import requests

from receiver.actions.base import ActionContext, ActionSettings
from receiver.actions.executor import ActionExecutor, StepOutcome, StepSpec
from receiver.approvals import ApprovalDesk
from receiver.comms.channels import ChannelSet
from receiver.comms.outbox import Outbox
from receiver.comms.speaker import Speaker
from receiver.errors import NotFound
from receiver.evidence import EvidenceRecorder, render_query
from receiver.incidents import IncidentEvent
from receiver.prom import PrometheusClient
from receiver.runbooks import Runbook, RunbookSet
from receiver.runbooks.sections import Duration
from receiver.status import StatusBuilder
from receiver.store.base import IncidentDetail, Store
from receiver.template_context import template_context
from receiver.timers import Timer, TimerQueue
from receiver.verification import VerificationState, check_condition

__all__ = ["Responder", "ResponseSettings"]

log = logging.getLogger("receiver.responder")

_LIVE = ("open", "contained")


@dataclass(frozen=True)
class ResponseSettings:
    time_scale: float = 1.0
    verify_interval: float = 15.0  # seconds between verify checks (scaled, at least 0.5 s)
    actor: str = "receiver"
    public_url: str | None = None
    evidence_budget: float = 10.0  # seconds for all evidence queries of one moment together


class Responder:
    """Implements the pipeline's ``Responder`` protocol and the timer handlers of the scheduler."""

    def __init__(
        self,
        *,
        store: Store,
        runbooks: RunbookSet,
        executor: ActionExecutor,
        action_settings: ActionSettings,
        outbox: Outbox,
        channels: ChannelSet,
        prometheus: PrometheusClient,
        timers: TimerQueue,
        settings: ResponseSettings | None = None,
        session: requests.Session | None = None,
        registry_state: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
        on_action: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store, self.runbooks, self.executor = store, runbooks, executor
        self.action_settings = action_settings
        self.outbox, self.channels, self.prometheus, self.timers = outbox, channels, prometheus, timers
        self.settings = settings or ResponseSettings()
        self.session = session or requests.Session()
        self.clock = clock
        self.on_action = on_action  # (kind, final state) for metrics
        self.log = store.incidents
        self.status = StatusBuilder(registry_state=registry_state, public_url=self.settings.public_url)
        self.speaker = Speaker(
            log=self.log,
            status=self.status,
            channels=channels,
            outbox=outbox,
            clock=clock,
            scaled=self.scaled,
        )
        self.evidence = EvidenceRecorder(prometheus, self.log, budget=self.settings.evidence_budget)
        self.approvals = ApprovalDesk(store, self, clock=clock, time_scale=self.settings.time_scale)
        if executor.gate is None:
            executor.gate = self.approvals.gate

    # -- durations ----------------------------------------------------------------------------------------
    def scaled(self, duration: Duration) -> float:
        """A runbook duration in seconds, scaled by ``time_scale``."""
        return duration.seconds * self.settings.time_scale

    def shown_query(self, detail: IncidentDetail, query: Any) -> str:
        """The PromQL as it actually runs for this incident (labels filled in), for people to read."""
        try:
            return render_query(str(query or ""), template_context(detail))
        except Exception:  # a bad template shows as written; the check itself reports the error
            return str(query or "")

    def describe(self, duration: Duration) -> str:
        """A runbook duration as people read it, with the compressed value when time is scaled."""
        if self.settings.time_scale == 1.0:
            return duration.text
        scale = self.settings.time_scale
        return f"{duration.text} (scaled to {self.scaled(duration):g}s at time scale {scale:g})"

    # -- pipeline events -----------------------------------------------------------------------------------
    def handle(self, events: Sequence[IncidentEvent]) -> None:
        for event in events:
            handler = {
                "opened": self._on_opened,
                "severity_raised": self._on_severity_raised,
                "resolved": self._on_resolved,
            }.get(event.kind)
            if handler is not None:
                handler(event)

    def _on_opened(self, event: IncidentEvent) -> None:
        detail, runbook = self._load(event.incident_id)
        if detail.incident.state not in _LIVE:
            return
        evidence = self.evidence.start(
            detail.incident.id, runbook.evidence, template_context(detail), "opened"
        )
        outcomes = self._contain(detail, runbook, event.fingerprint)
        self.evidence.finish(detail.incident.id, "opened", evidence)
        detail = self.store.get_incident(event.incident_id)
        self.speaker.speak(detail, runbook, "opened", sequence=0, fingerprint=event.fingerprint)
        self._arm_timers(detail, runbook, outcomes)
        self._escalate_if_asked(detail, runbook, outcomes)

    def _on_severity_raised(self, event: IncidentEvent) -> None:
        detail, runbook = self._load(event.incident_id)
        if detail.incident.state not in _LIVE:
            return
        outcomes = self._contain(detail, runbook, event.fingerprint)
        detail = self.store.get_incident(event.incident_id)
        summary = f"Severity raised from {event.previous_severity} to {event.severity}."
        self.speaker.speak(detail, runbook, "update", sequence=1000 + event.notification_id, summary=summary)
        self._arm_timers(detail, runbook, outcomes)
        self._escalate_if_asked(detail, runbook, outcomes)

    def _on_resolved(self, event: IncidentEvent, *, page: bool = True) -> None:
        detail, runbook = self._load(event.incident_id)
        # verification keeps running: alerts often resolve *because* containment worked, and the review
        # should still say whether (and when) the verify condition held
        self.timers.cancel(event.incident_id, ("escalate", "update"))
        if page:  # not when PagerDuty told us: it is resolved there already
            self._page_event(detail, runbook, "resolve")
        detail = self.store.get_incident(event.incident_id)
        self.speaker.speak(detail, runbook, "resolved", sequence=0)

    # -- human control (admin API and CLI) -------------------------------------------------------------------
    def acknowledge(self, incident_id: int, actor: str, note: str = "", *, from_pager: bool = False) -> bool:
        done = self.log.acknowledge(incident_id, actor, note)
        self.timers.cancel(incident_id, ("escalate",))
        if done and not from_pager:  # acknowledged here: acknowledge the page too (PagerDuty both ways)
            detail, runbook = self._load(incident_id)
            self._page_event(detail, runbook, "acknowledge")
        return done

    def decide(self, incident_id: int, approval_id: int, decision: str, actor: str, reason: str = "") -> bool:
        """A person's decision on an approval gate (approve|deny); True when this decision won. Who, when and
        why land on the timeline; then the gated step runs (approve) or is skipped (deny), exactly once."""
        return self.approvals.decide(incident_id, approval_id, decision, actor, reason)

    def run_approved_step(self, incident_id: int, step: StepSpec, phase: str) -> StepOutcome | None:
        """Run a step whose approval gate opened, then what follows containment (verify, escalation)."""
        detail, runbook = self._load(incident_id)
        ctx = self._action_context(detail, runbook)
        outcome = self.executor.run_step(step, ctx, phase=phase, dry_run=runbook.dry_run)
        self._record_outcomes(incident_id, [outcome])
        detail = self.store.get_incident(incident_id)
        if detail.incident.state in _LIVE:
            self._arm_timers(detail, runbook, [outcome])
            self._escalate_if_asked(detail, runbook, [outcome])
        return outcome

    def say(self, incident_id: int, summary: str, sequence: int) -> None:
        """An ``update`` on the incident's channels (deduplicated by ``sequence``)."""
        detail, runbook = self._load(incident_id)
        self.speaker.speak(detail, runbook, "update", sequence=sequence, summary=summary)

    def _page_event(self, detail: IncidentDetail, runbook: Runbook, event: str) -> None:
        """Acknowledge or resolve the page of this incident, once, if one was triggered."""
        triggered = [r for r in self._ledger_keys(detail) if r.key.kind == "page" and r.state == "succeeded"]
        if not any((r.result or {}).get("event_action") == "trigger" for r in triggered):
            return
        # the escalate phase: the page may come from escalation as well as from a contain step
        step = StepSpec(id=f"auto-{event}-page", kind="page", params={"event": event})
        ctx = self._action_context(detail, runbook)
        outcome = self.executor.run_step(step, ctx, phase="escalate", automatic=True)
        self._record_outcomes(detail.incident.id, [outcome])

    def resolve(self, incident_id: int, actor: str, note: str = "", *, from_pager: bool = False) -> bool:
        message = f"resolved by {actor}" + (f": {note}" if note else "")
        changed = self.log.transition(incident_id, "resolved", message, {"actor": actor, "note": note})
        if changed:
            self._on_resolved(IncidentEvent("resolved", incident_id, "", "", "", 0), page=not from_pager)
        return changed

    def close(self, incident_id: int, actor: str, note: str = "") -> bool:
        message = f"closed by {actor}" + (f": {note}" if note else "")
        return self.log.transition(incident_id, "closed", message, {"actor": actor, "note": note})

    def recover(self, incident_id: int, actor: str, *, dry_run: bool = False) -> list[StepOutcome]:
        """Run the runbook's ``recover`` steps (or undo every containment when it has none)."""
        detail, runbook = self._load(incident_id)
        ctx = self._action_context(detail, runbook)
        steps = list(runbook.recover) or None
        self.log.add_timeline(
            incident_id, "recovery_requested", f"recovery requested by {actor}", {"actor": actor}
        )
        outcomes = self.executor.recover(ctx, steps, automatic=False, dry_run=dry_run or runbook.dry_run)
        self._record_outcomes(incident_id, outcomes)
        detail = self.store.get_incident(incident_id)
        done = ", ".join(f"{o.key.kind} {o.state}" for o in outcomes) or "nothing to recover"
        self.speaker.speak(
            detail,
            runbook,
            "update",
            sequence=2000 + len(detail.timeline),
            summary=f"Recovery run by {actor}: {done}.",
        )
        return outcomes

    def resume_interrupted(self) -> list[StepOutcome]:
        """Apply the ledger's restart rule to steps whose owner stopped renewing their lease (at start-up and
        every sweep: a replica killed mid-action), put what happened on each incident's timeline, verify what
        was reconciled and escalate what was interrupted."""

        def make_context(row: Any) -> ActionContext:
            detail, runbook = self._load(int(row.key.incident_id))
            return self._action_context(detail, runbook)

        self.approvals.settle()  # decisions whose consequence a crash cut short
        outcomes = self.executor.resume_interrupted(make_context)
        for outcome in outcomes:
            incident_id = int(outcome.key.incident_id)
            self._record_outcomes(incident_id, [outcome])
            detail, runbook = self._load(incident_id)
            if detail.incident.state in _LIVE:
                # a reconciled containment is verified like any other; an interrupted one escalates
                self._arm_timers(detail, runbook, [outcome])
                self._escalate_if_asked(detail, runbook, [outcome])
        return outcomes

    # -- timers ---------------------------------------------------------------------------------------------
    def timer_handlers(self) -> dict[str, Callable[[Timer], tuple[float, dict[str, Any]] | None]]:
        return {
            "verify": self._on_verify_timer,
            "escalate": self._on_escalate_timer,
            "update": self._on_update_timer,
            "approval": self.approvals.on_timer,
        }

    def _on_verify_timer(self, timer: Timer) -> tuple[float, dict[str, Any]] | None:
        detail, runbook = self._load(timer.incident_id)
        if detail.incident.state == "closed":
            return None
        if runbook.verify is None:
            return None  # the runbook lost its verify section since the timer was armed
        query = runbook.verify.query
        state = VerificationState.from_json(timer.payload["state"])
        now = self.clock()
        outcome = check_condition(self.prometheus, query, template_context(detail))
        state = state.observe(now, outcome)
        if state.status == "pending":
            return now + self._verify_interval(state), {"state": state.to_json()}
        if state.status == "passed":
            data = {"verification": state.to_json(), "query": self.shown_query(detail, query)}
            if detail.incident.state == "resolved":
                # alerts resolved while we verified: record that containment held, keep the state
                self.log.record_contained(
                    timer.incident_id, f"verified after resolution: {state.reason}", data
                )
                return None
            changed = self.log.transition(
                timer.incident_id, "contained", f"verified: {state.reason}", data, allowed_from=("open",)
            )
            if changed:
                detail = self.store.get_incident(timer.incident_id)
                self.speaker.speak(
                    detail,
                    runbook,
                    "contained",
                    sequence=0,
                    summary=f"Verified: {self.shown_query(detail, query)} — {state.reason}.",
                )
            return None
        if detail.incident.state == "resolved":
            self.log.add_timeline(
                timer.incident_id,
                "verification_failed",
                f"verification {state.status} after resolution: {state.reason}",
                {"verification": state.to_json(), "query": self.shown_query(detail, query)},
                dedupe_key="verify:failed",
            )
            return None
        self.log.add_timeline(
            timer.incident_id,
            "verification_failed",
            f"verification {state.status}: {state.reason}",
            {"verification": state.to_json(), "query": self.shown_query(detail, query)},
            dedupe_key="verify:failed",
        )
        self._escalate(detail, runbook, f"containment not verified ({state.status}): {state.reason}")
        return None

    def _on_escalate_timer(self, timer: Timer) -> tuple[float, dict[str, Any]] | None:
        detail, runbook = self._load(timer.incident_id)
        if detail.incident.state not in _LIVE or detail.incident.acknowledged_at:
            return None
        after = runbook.escalate.after if runbook.escalate else Duration.parse("30m")
        self._escalate(detail, runbook, f"not acknowledged within {self.describe(after)}")
        return None

    def _on_update_timer(self, timer: Timer) -> tuple[float, dict[str, Any]] | None:
        detail, runbook = self._load(timer.incident_id)
        if detail.incident.state not in _LIVE:
            return None
        number = int(timer.payload.get("number", 1))
        if runbook.comms is None:
            return None
        next_at = self.clock() + self.scaled(runbook.comms.cadence)
        self.speaker.speak(
            detail, runbook, "update", sequence=number, next_update_at=datetime.fromtimestamp(next_at, UTC)
        )
        return next_at, {"number": number + 1}

    # -- internals ------------------------------------------------------------------------------------------
    def _load(self, incident_id: int) -> tuple[IncidentDetail, Runbook]:
        detail = self.store.get_incident(incident_id)
        try:
            runbook = self.runbooks.get(detail.incident.runbook_id)
        except NotFound:
            runbook = self.runbooks.match({})  # runbook removed since: respond as unmatched
        return detail, runbook

    def _ledger_keys(self, detail: IncidentDetail) -> list[Any]:
        return list(self.executor.ledger.rows(str(detail.incident.id)))

    def _action_context(
        self, detail: IncidentDetail, runbook: Runbook, fingerprint: str | None = None
    ) -> ActionContext:
        ctx = template_context(detail, fingerprint)
        incident = detail.incident
        return ActionContext(
            incident_id=str(incident.id),
            model=incident.model or ctx["labels"].get("model", ""),
            settings=self.action_settings,
            runbook_id=runbook.id,
            labels=ctx["labels"],
            annotations=ctx["annotations"],
            severity=incident.severity,
            value=ctx["value"],
            facts={"firing_count": ctx["firing_count"], "opened_at": incident.opened_at},
            incident_key=incident.incident_key,
            session=self.session,
            notifier=self._notify,
        )

    def _contain(
        self, detail: IncidentDetail, runbook: Runbook, fingerprint: str | None
    ) -> list[StepOutcome]:
        steps = list(runbook.contain)
        if not steps:
            return []
        ctx = self._action_context(detail, runbook, fingerprint)
        if runbook.cooldown is not None:
            settings = replace(self.action_settings, cooldown_seconds=self.scaled(runbook.cooldown))
            ctx = ctx.narrow(settings=settings)
        outcomes = self.executor.run_steps(steps, ctx, phase="contain", dry_run=runbook.dry_run)
        self._record_outcomes(detail.incident.id, outcomes)
        return outcomes

    def _record_outcomes(self, incident_id: int, outcomes: Sequence[StepOutcome]) -> None:
        for outcome in outcomes:
            if self.on_action is not None and not outcome.duplicate:
                self.on_action(outcome.key.kind, outcome.state)
            for index, entry in enumerate(outcome.timeline):
                summary = entry.get("summary") or entry.get("error") or entry.get("event", "")
                message = (
                    f"{entry.get('phase', '')} {entry.get('action')} [{entry.get('step_id')}]: {summary}"
                )
                key = (
                    f"action:{entry.get('phase')}:{entry.get('step_id')}:{entry.get('event')}:"
                    f"{entry.get('attempt', index)}"
                )
                self.log.add_timeline(incident_id, "action", message.strip(), entry, dedupe_key=key)

    def _arm_timers(self, detail: IncidentDetail, runbook: Runbook, outcomes: Sequence[StepOutcome]) -> None:
        now = self.clock()
        incident_id = detail.incident.id
        acted = [o for o in outcomes if o.state in ("succeeded", "dry_run")]
        verify = runbook.verify
        if verify is not None and acted:
            state = VerificationState.start(now, self.scaled(verify.for_), self.scaled(verify.timeout))
            if self.timers.schedule(
                incident_id, "verify", now + self._verify_interval(state), {"state": state.to_json()}
            ):
                self.log.add_timeline(
                    incident_id,
                    "verification_started",
                    f"verifying: {self.shown_query(detail, verify.query)} must hold for "
                    f"{self.describe(verify.for_)}",
                    {
                        "query": self.shown_query(detail, verify.query),
                        "for": verify.for_.text,
                        "timeout": verify.timeout.text,
                    },
                    dedupe_key="verify:started",
                )
        if runbook.escalate is not None:
            self.timers.schedule(incident_id, "escalate", now + self.scaled(runbook.escalate.after))
        comms = runbook.comms
        if comms is not None and comms.channels:
            self.timers.schedule(incident_id, "update", now + self.scaled(comms.cadence), {"number": 1})

    def _verify_interval(self, state: VerificationState) -> float:
        step = min(self.settings.verify_interval * self.settings.time_scale, max(state.for_s / 4, 0.5))
        return max(0.5, step)

    def _escalate_if_asked(
        self, detail: IncidentDetail, runbook: Runbook, outcomes: Sequence[StepOutcome]
    ) -> None:
        reasons = [f"{o.key.kind} [{o.key.step_id}]: {o.escalate}" for o in outcomes if o.escalate]
        if reasons:
            self._escalate(detail, runbook, "; ".join(reasons))

    def _escalate(self, detail: IncidentDetail, runbook: Runbook, reason: str) -> None:
        incident_id = detail.incident.id
        spec = runbook.escalate
        target = spec.to if spec else None
        first = self.log.mark_escalated(incident_id)
        self.log.add_timeline(
            incident_id,
            "escalated",
            f"escalated to {target or 'on-call'}: {reason}",
            {"to": target, "reason": reason},
            dedupe_key=f"escalated:{reason}",
        )
        if spec is not None and spec.upgrade_to:
            self.log.raise_severity(incident_id, spec.upgrade_to, f"escalation: {reason}")
        if spec is not None and spec.page:
            ctx = self._action_context(detail, runbook)
            step = StepSpec(
                id="escalation-page",
                kind="page",
                params={"service": spec.to or "on-call", "event": "trigger"},
            )
            outcome = self.executor.run_step(step, ctx, phase="escalate", automatic=True)
            self._record_outcomes(incident_id, [outcome])
        if first:
            detail = self.store.get_incident(incident_id)
            self.speaker.speak(detail, runbook, "escalated", sequence=0, summary=f"Escalated: {reason}")

    def _notify(self, incident_id: str, channel: str, payload: Mapping[str, Any], dedupe_key: str) -> None:
        """The ``notify`` action's notifier: render through the comms templates and queue on the outbox."""
        detail, runbook = self._load(int(incident_id))
        self.speaker.notify(detail, runbook, channel, payload, dedupe_key)
