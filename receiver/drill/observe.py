"""Judge one poll of a drill scenario: which hops it reached, whether it is contained and verified, and
whether it is finished.

Split from :mod:`receiver.drill.run`, which decides what happens when (warm up, inject, poll, heal,
collect); this module only turns what one poll read (alerts, incidents, registry, sink, model server)
into the scenario's :class:`~receiver.drill.results.ScenarioResult`.
"""

from __future__ import annotations

from typing import Any

from receiver.drill.floors import SIGNAL_HOP
from receiver.drill.probe import StackProbe, epoch
from receiver.drill.results import HOPS, ScenarioResult
from receiver.drill.scenarios import Scenario
from receiver.drill.stack import Stack

__all__ = ["VERIFY_BUDGET", "ScenarioObserver", "first_incident", "serving_fields", "stage_of"]

VERIFY_BUDGET = 90.0


def serving_fields(state: dict[str, Any]) -> tuple[Any, ...]:
    """What a registry snapshot serves (the fields containment changes), to compare two snapshots."""
    unhealthy = sorted(v["version"] for v in state.get("versions", []) if v.get("unhealthy"))
    return (
        state.get("active_version"),
        sorted((state.get("traffic") or {}).items()),
        state.get("mode"),
        state.get("guardrail_level"),
        unhealthy,
    )


def stage_of(result: ScenarioResult) -> str:
    """The last hop ``result`` reached, for the progress line and a failure's reason."""
    reached = [h for h in HOPS if result.times.get(h) is not None]
    return reached[-1] if reached else "waiting for the rule"


def first_incident(scenario: Scenario, incidents: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The scenario's incident: the first of ``incidents`` opened by one of its runbooks (in the runbooks'
    order)."""
    for runbook in scenario.runbooks:
        first = next((i for i in incidents if i.get("runbook_id") == runbook), None)
        if first is not None:
            return first
    return None


class ScenarioObserver:
    """Reads each poll's evidence into the scenarios' results; remembers each model's registry right after
    its fault (:meth:`baseline`), which a dry run must leave unchanged."""

    def __init__(self, stack: Stack, probe: StackProbe, *, dry_run: bool) -> None:
        self.stack = stack
        self.probe = probe
        self.dry_run = dry_run
        self._baseline_registry: dict[str, dict[str, Any]] = {}

    def baseline(self, model: str) -> None:
        self._baseline_registry[model] = self.probe.registry_snapshot(model)

    def finished(self, scenario: Scenario, result: ScenarioResult, now: float) -> tuple[bool, str]:
        assert result.fault_at is not None
        if not result.contained:
            if now - result.fault_at > scenario.deadline:
                return True, (
                    f"expected containment ({scenario.expect.description}) not observed within "
                    f"{scenario.deadline:g}s; last stage: {stage_of(result)}"
                )
            return False, ""
        if not result.expect_verified:
            return True, "containment observed" + (
                " (dry run: would-have-run on the timeline, registry unchanged)" if self.dry_run else ""
            )
        if result.verified:
            return True, "contained and verified"
        contained_at = result.times["containment applied"] or now
        if now - contained_at > VERIFY_BUDGET:
            result.verified = False
            return True, f"contained but not verified within {VERIFY_BUDGET:g}s of containment"
        return False, ""

    def observe(
        self,
        scenario: Scenario,
        result: ScenarioResult,
        now: float,
        firing: list[dict[str, Any]],
        am_alerts: list[dict[str, Any]],
        messages: list[Any],
    ) -> None:
        times = result.times
        model, kind = scenario.model, scenario.incident_type
        ours = [
            a
            for a in firing
            if a.get("labels", {}).get("model") == model and a.get("labels", {}).get("incident_type") == kind
        ]
        if times["rule firing"] is None:
            # when each alert's expression first held (the earliest of its series, e.g. one per feature),
            # re-read until a rule fires (an alert that drops out of pending and comes back gets a new
            # activeAt); frozen from then on
            signals: dict[str, float] = {}
            for alert in ours:
                name, at = str(alert["labels"].get("alertname")), epoch(alert.get("activeAt"))
                if at is not None:
                    signals[name] = min(at, signals.get(name, at))
            result.signals = signals
            if signals:
                times[SIGNAL_HOP] = min(signals.values())
            if any(a.get("state") == "firing" for a in ours):
                times["rule firing"] = now
        if times["alertmanager"] is None and any(
            a.get("labels", {}).get("model") == model
            and a.get("labels", {}).get("incident_type") == kind
            and (a.get("status") or {}).get("state") in ("active", "suppressed")
            for a in am_alerts
        ):
            times["alertmanager"] = now
        incident = first_incident(scenario, self.probe.incidents_since(model, result.fault_at))
        if incident is None:
            return
        result.incident = incident
        if times["webhook received"] is None:
            times["webhook received"] = epoch(incident.get("opened_at")) or now
        if result.contained:
            self._observe_verified(result, incident, now)
            return
        expect = scenario.expect
        registry = self.probe.registry_snapshot(model)
        if self.dry_run:
            detail = self.probe.incident_detail(int(incident["id"]))
            timeline = detail.get("timeline", []) if detail else []
            would = [
                e for e in timeline if "would" in (str(e.get("message", "")) + str(e.get("kind", ""))).lower()
            ]
            unchanged = serving_fields(registry) == serving_fields(self._baseline_registry[model])
            if would and unchanged:
                times["containment applied"] = epoch(would[0].get("at")) or now
                result.contained = True
            return
        checks_ok = True
        if expect.registry is not None and not expect.registry(registry):
            checks_ok = False
        if expect.sink is not None and not expect.sink(messages, model):
            checks_ok = False
        server_ok = True
        if expect.server is not None:
            state = self.stack.server_state(model)
            server_ok = state is not None and expect.server(state)
        if times["containment applied"] is None and checks_ok:
            times["containment applied"] = self._applied_at(scenario, result, messages) or now
        if checks_ok and server_ok:
            if expect.server is not None and times["serving contained"] is None:
                times["serving contained"] = now
            result.contained = True
            self._observe_verified(result, incident, now)

    def _applied_at(self, scenario: Scenario, result: ScenarioResult, messages: list[Any]) -> float | None:
        assert result.fault_at is not None
        if scenario.expect.registry_actions:
            entries = [
                e
                for e in self.stack.registry().history(scenario.model, limit=50)
                if e.action in scenario.expect.registry_actions and not e.actor.startswith("drill")
            ]
            stamps = [e.at.timestamp() for e in entries if e.at.timestamp() >= result.fault_at - 1]
            if stamps:
                return min(stamps)
        if scenario.expect.sink is not None:
            sink = scenario.expect.sink
            stamps = [m.at for m in messages if m.at >= result.fault_at and sink([m], scenario.model)]
            if stamps:
                return min(stamps)
        return None

    def _observe_verified(self, result: ScenarioResult, incident: dict[str, Any], now: float) -> None:
        state = incident.get("state")
        if result.times["verified"] is not None or state not in ("contained", "resolved", "closed"):
            return
        if incident.get("state") != "contained" and not result.expect_verified:
            return
        # verified = the responder's verification passed (a "contained" entry), not merely a resolve
        detail = self.probe.incident_detail(int(incident["id"]))
        for entry in (detail or {}).get("timeline", []):
            if entry.get("kind") == "contained":
                result.times["verified"] = epoch(entry.get("at")) or now
                result.verified = True
                return
