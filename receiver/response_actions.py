"""What the responder does to an incident: run its runbook's steps and record them, page, escalate.

Split out of :mod:`receiver.responder` (which keeps the pipeline events and the human controls) together
with :mod:`receiver.response_timers` (the timers): :class:`ResponseActions` is the base of
:class:`~receiver.responder.Responder` and holds the helpers both act through, on the state
:class:`~receiver.responder.Responder` sets up in its ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import requests

from receiver.actions.base import ActionContext, ActionSettings
from receiver.actions.executor import ActionExecutor, StepOutcome, StepSpec
from receiver.comms.speaker import Speaker
from receiver.errors import NotFound
from receiver.evidence import render_query
from receiver.runbooks import Runbook, RunbookSet
from receiver.runbooks.sections import Duration
from receiver.store.base import IncidentDetail, IncidentStore, Store
from receiver.template_context import template_context

__all__ = ["LIVE_STATES", "ResponseActions", "ResponseSettings"]

#: the incident states the responder still acts on
LIVE_STATES = ("open", "contained")


@dataclass(frozen=True)
class ResponseSettings:
    time_scale: float = 1.0
    verify_interval: float = 15.0  # seconds between verify checks (scaled, at least 0.5 s)
    actor: str = "receiver"
    public_url: str | None = None
    evidence_budget: float = 10.0  # seconds for all evidence queries of one moment together


class ResponseActions:
    """The responder's actions on one incident (steps through the executor and ledger, pages, escalation)."""

    # set up by Responder.__init__
    store: Store
    runbooks: RunbookSet
    executor: ActionExecutor
    action_settings: ActionSettings
    settings: ResponseSettings
    session: requests.Session
    on_action: Callable[[str, str], None] | None
    log: IncidentStore
    speaker: Speaker

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
