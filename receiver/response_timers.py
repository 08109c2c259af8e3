"""The responder's timers: arm verify, escalate and update after containment, and handle them when due.

Split out of :mod:`receiver.responder` so that the timer side (what the scheduler calls, see
:meth:`ResponseTimers.timer_handlers`) reads on its own; :class:`ResponseTimers` is a base of
:class:`~receiver.responder.Responder` and acts through :class:`~receiver.response_actions.ResponseActions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from receiver.actions.executor import StepOutcome
from receiver.approvals import ApprovalDesk
from receiver.prom import PrometheusClient
from receiver.response_actions import LIVE_STATES as _LIVE
from receiver.response_actions import ResponseActions
from receiver.runbooks import Runbook
from receiver.runbooks.sections import Duration
from receiver.store.base import IncidentDetail
from receiver.template_context import template_context
from receiver.timers import Timer, TimerQueue
from receiver.verification import VerificationState, check_condition

__all__ = ["ResponseTimers"]


class ResponseTimers(ResponseActions):
    """The scheduler's timer handlers (verify, escalate, update, approval) and the arming of the timers."""

    # set up by Responder.__init__
    prometheus: PrometheusClient
    timers: TimerQueue
    clock: Callable[[], float]
    approvals: ApprovalDesk

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
        data = {"verification": state.to_json(), "query": self.shown_query(detail, query)}
        resolved = detail.incident.state == "resolved"
        if state.status == "passed":
            if resolved:
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
        after = " after resolution" if resolved else ""
        self.log.add_timeline(
            timer.incident_id,
            "verification_failed",
            f"verification {state.status}{after}: {state.reason}",
            data,
            dedupe_key="verify:failed",
        )
        if resolved:  # the alerts went away while we verified: nothing left to escalate about
            return None
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
