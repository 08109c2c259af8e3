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

This module holds the pipeline events and the human controls; the timers are in
:mod:`receiver.response_timers` and the actions both go through (steps, pages, escalation) in
:mod:`receiver.response_actions`, the bases of :class:`Responder`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests

from receiver.actions.base import ActionContext, ActionSettings
from receiver.actions.executor import ActionExecutor, StepOutcome, StepSpec
from receiver.approvals import ApprovalDesk
from receiver.comms.channels import ChannelSet
from receiver.comms.outbox import Outbox
from receiver.comms.speaker import Speaker
from receiver.evidence import EvidenceRecorder
from receiver.incidents import IncidentEvent
from receiver.prom import PrometheusClient
from receiver.response_actions import LIVE_STATES as _LIVE
from receiver.response_actions import ResponseSettings
from receiver.response_timers import ResponseTimers
from receiver.runbooks import RunbookSet
from receiver.status import StatusBuilder
from receiver.store.base import Store
from receiver.template_context import template_context
from receiver.timers import TimerQueue

__all__ = ["Responder", "ResponseSettings"]

log = logging.getLogger("receiver.responder")


class Responder(ResponseTimers):  # ResponseTimers is a ResponseActions
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
