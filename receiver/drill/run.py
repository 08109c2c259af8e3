"""Run drill scenarios on one native stack: warm up, inject every fault, watch each hop, collect the report.

All scenarios of a run share the stack (Prometheus, Alertmanager, receiver, registry DB) with one model
and one model server per scenario, so the whole set takes about as long as its slowest scenario.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from model_server.traffic import TrafficConfig
from receiver.drill.floors import SIGNAL_HOP, compute_floors, effective_floors
from receiver.drill.progress import Progress
from receiver.drill.scenarios import Scenario
from receiver.drill.stack import Stack, StackOptions
from receiver.drill.traffic import NullFeatureTraffic, TrafficThread

__all__ = ["HOPS", "DrillReport", "DrillRun", "ScenarioResult", "run_drill"]

#: The hops measured from the fault, in order.
HOPS = (
    SIGNAL_HOP,
    "rule firing",
    "alertmanager",
    "webhook received",
    "containment applied",
    "serving contained",
    "verified",
)
DEFAULT_RATE = 8.0
WARMUP_TIMEOUT = 60.0
QUIET_TIMEOUT = 60.0
#: seconds watched after the last scenario ends, for incidents a fault opens after its containment (the
#: drill's compressed keep_firing_for is 10 s, Alertmanager's compressed group_wait 1 s)
AFTERMATH = 15.0
VERIFY_BUDGET = 90.0
POLL_INTERVAL = 0.5


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class ScenarioResult:
    scenario: str
    model: str
    incident_type: str
    summary: str
    fault: str
    expected: str
    dry_run: bool
    deadline: float
    fault_at: float | None = None
    times: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(HOPS))
    #: per hop, the earliest the configuration allows given the measured signal (see drill.floors)
    floors: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(HOPS))
    #: per hop, the same assuming the signal held at the first evaluation after the fault
    config_floors: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(HOPS))
    #: per alert of the scenario seen pending or firing: when its expression first held (``activeAt``)
    signals: dict[str, float] = field(default_factory=dict)
    #: the alert whose signal sets the floors (the one allowing the earliest containment)
    signal_alert: str | None = None
    contained: bool = False
    verified: bool | None = None
    healed_at: float | None = None
    reason: str = ""
    incident: dict[str, Any] | None = None
    #: every incident opened for the scenario's model since the fault (one, when grouping and inhibition
    #: keep a fault to one incident), collected after the aftermath wait
    incidents: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    registry: dict[str, Any] = field(default_factory=dict)
    registry_history: list[dict[str, Any]] = field(default_factory=list)
    server_state: dict[str, Any] | None = None
    expect_verified: bool = True

    @property
    def passed(self) -> bool:
        return self.contained and (self.verified is not False or not self.expect_verified)

    def elapsed(self, hop: str) -> float | None:
        at = self.times.get(hop)
        return None if at is None or self.fault_at is None else at - self.fault_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "model": self.model,
            "incident_type": self.incident_type,
            "summary": self.summary,
            "fault": self.fault,
            "expected": self.expected,
            "dry_run": self.dry_run,
            "passed": self.passed,
            "contained": self.contained,
            "verified": self.verified,
            "reason": self.reason,
            "deadline_seconds": self.deadline,
            "fault_at": self.fault_at,
            "healed_at": self.healed_at,
            "signals": {name: at - (self.fault_at or 0.0) for name, at in self.signals.items()},
            "signal_alert": self.signal_alert,
            "hops": [
                {
                    "hop": h,
                    "seconds_after_fault": self.elapsed(h),
                    "floor_seconds": self.floors.get(h),
                    "floor_with_instant_signal_seconds": self.config_floors.get(h),
                }
                for h in HOPS
            ],
            "incident": self.incident,
            "incidents": self.incidents,
            "timeline": self.timeline,
            "messages": self.messages,
            "registry": self.registry,
            "registry_history": self.registry_history,
            "server_state": self.server_state,
        }


@dataclass
class DrillReport:
    results: list[ScenarioResult]
    floors_config: dict[str, Any]
    started_at: float
    finished_at: float
    urls: dict[str, str] = field(default_factory=dict)
    dropped_settings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results) and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "duration_seconds": self.finished_at - self.started_at,
            "config": self.floors_config,
            "settings_not_supported_by_receiver": self.dropped_settings,
            "problems": self.problems,
            "urls": self.urls,
            "scenarios": [r.to_dict() for r in self.results],
        }


class DrillRun:
    """One run: owns the stack and the traffic; ``execute()`` returns the report. ``stop()`` is idempotent."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        options: StackOptions | None = None,
        rate: float = DEFAULT_RATE,
    ) -> None:
        if not scenarios:
            raise ValueError("no scenarios to run")
        names = [s.model for s in scenarios]
        if len(set(names)) != len(names):
            raise ValueError(f"scenarios must use distinct models, got {names}")
        self.scenarios = list(scenarios)
        self.dry_run = dry_run
        self.progress = progress or Progress(quiet=True)
        base = options or StackOptions()
        from dataclasses import replace

        self.stack = Stack(
            names,
            replace(base, dry_run=dry_run),
            setup_promote={s.model: s.setup_promote for s in scenarios if s.setup_promote},
        )
        self.rate = rate
        self.traffic: dict[str, TrafficThread | NullFeatureTraffic] = {}
        self.results = {
            s.name: ScenarioResult(
                s.name,
                s.model,
                s.incident_type,
                s.summary,
                s.fault.describe(),
                s.expect.description,
                dry_run,
                s.deadline,
                expect_verified=s.expect.verified and not dry_run,
            )
            for s in scenarios
        }
        self.problems: list[str] = []
        self._baseline_registry: dict[str, dict[str, Any]] = {}
        self._session = requests.Session()

    # -- public --------------------------------------------------------------------------------------
    def start(self) -> None:
        self.stack.start(self.progress)
        for scenario in self.scenarios:
            thread = TrafficThread(self._traffic_config(scenario))
            thread.start()
            self.traffic[scenario.model] = thread
        self._warm_up()

    def execute(self) -> DrillReport:
        started = time.time()
        self.start()
        self.floors = compute_floors(self.stack, self.scenarios)
        for scenario in self.scenarios:
            self.results[scenario.name].config_floors.update(self.floors.per_scenario[scenario.name])
            self.results[scenario.name].floors.update(self.floors.per_scenario[scenario.name])
        for scenario in self.scenarios:
            self._inject(scenario)
        self._watch()
        # a fault's aftermath: alerts that outlive the containment (a burn page whose window still holds
        # the errors once the release watch ends) would open a second incident within seconds
        time.sleep(AFTERMATH)
        for scenario in self.scenarios:
            self._collect(scenario)
            self._settle_floors(self.results[scenario.name])
        self.progress.done()
        return DrillReport(
            list(self.results.values()),
            self.floors.config,
            started,
            time.time(),
            self.stack.urls(),
            self.stack.dropped_settings,
            self.problems,
        )

    def stop(self) -> None:
        try:
            for traffic in self.traffic.values():
                traffic.stop()
            self.traffic.clear()
        finally:
            self.stack.stop()
            self._session.close()

    # -- steps ---------------------------------------------------------------------------------------
    def _traffic_config(self, scenario: Scenario) -> TrafficConfig:
        options = {"rate": self.rate, **scenario.traffic}
        return TrafficConfig(
            url=self.stack.server_urls[scenario.model],
            duration=6 * 3600.0,
            seed=abs(hash(scenario.name)) % 10_000,
            **options,
        )

    def _query(self, promql: str) -> list[dict[str, Any]]:
        resp = self._session.get(
            self.stack.prometheus_url + "/api/v1/query", params={"query": promql}, timeout=5
        )
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()["data"]["result"]
        return result

    def _warm_up(self) -> None:
        """Wait until Prometheus sees traffic for every model (the rules' minimum-traffic guards)."""
        deadline = time.monotonic() + WARMUP_TIMEOUT
        models = {s.model for s in self.scenarios}
        while True:
            try:
                rows = self._query("sum by (model) (rate(model_requests_total[10s])) >= 0.5")
                seen = {r["metric"].get("model") for r in rows}
            except (requests.RequestException, KeyError, ValueError):
                seen = set()
            missing = sorted(models - seen)
            if not missing:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no traffic seen by Prometheus after {WARMUP_TIMEOUT:g}s for: " + ", ".join(missing)
                )
            self.progress.stage("warming up", f"waiting for traffic in Prometheus: {', '.join(missing)}")
            time.sleep(0.5)
        # the compressed rate windows (10 s) must hold healthy traffic, and no page-severity alert may be
        # pending or firing for a drill model before the fault (else a start-up blip would be measured)
        settle = time.monotonic() + 10.0
        quiet_deadline = settle + QUIET_TIMEOUT
        while True:
            noisy = sorted(
                {
                    str(a.get("labels", {}).get("alertname")) + "/" + str(a["labels"].get("model"))
                    for a in self._firing_alerts()
                    if a.get("labels", {}).get("model") in models and a["labels"].get("severity") == "page"
                }
            )
            if time.monotonic() >= settle and not noisy:
                break
            if time.monotonic() > quiet_deadline:
                self.problems.append(f"alerts still active before the fault: {', '.join(noisy)}")
                break
            self.progress.stage(
                "settling" if not noisy else "waiting for start-up pages to clear", ", ".join(noisy)
            )
            time.sleep(0.5)
        self.progress.note("traffic flowing for every model, no alert active")

    def _registry_snapshot(self, model: str) -> dict[str, Any]:
        state: dict[str, Any] = self.stack.registry().state(model).to_dict()
        return state

    @staticmethod
    def _serving_fields(state: dict[str, Any]) -> tuple[Any, ...]:
        unhealthy = sorted(v["version"] for v in state.get("versions", []) if v.get("unhealthy"))
        return (
            state.get("active_version"),
            sorted((state.get("traffic") or {}).items()),
            state.get("mode"),
            state.get("guardrail_level"),
            unhealthy,
        )

    def _inject(self, scenario: Scenario) -> None:
        result = self.results[scenario.name]
        fault = scenario.fault
        result.fault_at = time.time()
        if fault.faults:
            self.stack.set_faults(scenario.model, fault.faults)
        if fault.promote:
            self.stack.registry().promote(
                scenario.model,
                fault.promote,
                actor="drill",
                reason=f"drill {scenario.name}: the release under test",
            )
        if fault.drift:
            traffic = self.traffic[scenario.model]
            assert isinstance(traffic, TrafficThread)
            traffic.restart(drift=dict(fault.drift))
        if fault.null_feature:
            self.traffic.pop(scenario.model).stop()
            null = NullFeatureTraffic(
                self.stack.server_urls[scenario.model],
                fault.null_feature,
                float(scenario.traffic.get("rate", self.rate)),
            )
            null.start()
            self.traffic[scenario.model] = null
        if fault.kill_server:
            self.stack.kill_server(scenario.model)
        self._baseline_registry[scenario.model] = self._registry_snapshot(scenario.model)
        self.progress.note(f"{scenario.name}: fault injected on {scenario.model}: {fault.describe()}")

    def _heal(self, scenario: Scenario) -> None:
        result = self.results[scenario.name]
        if result.healed_at is not None:
            return
        result.healed_at = time.time()
        if scenario.fault.faults:
            self.stack.clear_faults(scenario.model)
        if scenario.fault.drift:
            traffic = self.traffic[scenario.model]
            assert isinstance(traffic, TrafficThread)
            traffic.restart(drift={})
        self.progress.note(f"{scenario.name}: contained; the drill now withdraws the fault (upstream fixed)")

    # -- watching ------------------------------------------------------------------------------------
    def _watch(self) -> None:
        pending = {s.name: s for s in self.scenarios}
        while pending:
            now = time.time()
            firing = self._firing_alerts()
            am_alerts = self._alertmanager_alerts()
            all_messages = self.stack.sink.messages() if self.stack.sink else []
            for name, scenario in list(pending.items()):
                result = self.results[name]
                assert result.fault_at is not None
                messages = [m for m in all_messages if m.at >= result.fault_at]
                self._observe(scenario, result, now, firing, am_alerts, messages)
                if result.contained and scenario.heal_after_containment and not self.dry_run:
                    self._heal(scenario)
                done, reason = self._finished(scenario, result, now)
                if done:
                    result.reason = reason
                    del pending[name]
                    status = "PASS" if result.passed else "FAIL"
                    self.progress.note(f"{name}: {status} - {reason}")
            if pending:
                self.progress.stage(
                    "watching", " | ".join(f"{n}: {self._stage_of(self.results[n])}" for n in pending)
                )
                time.sleep(POLL_INTERVAL)

    @staticmethod
    def _stage_of(result: ScenarioResult) -> str:
        reached = [h for h in HOPS if result.times.get(h) is not None]
        return reached[-1] if reached else "waiting for the rule"

    def _finished(self, scenario: Scenario, result: ScenarioResult, now: float) -> tuple[bool, str]:
        assert result.fault_at is not None
        if not result.contained:
            if now - result.fault_at > scenario.deadline:
                return True, (
                    f"expected containment ({scenario.expect.description}) not observed within "
                    f"{scenario.deadline:g}s; last stage: {self._stage_of(result)}"
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

    def _firing_alerts(self) -> list[dict[str, Any]]:
        try:
            resp = self._session.get(self.stack.prometheus_url + "/api/v1/alerts", timeout=3)
            alerts: list[dict[str, Any]] = resp.json()["data"]["alerts"]
            return alerts
        except (requests.RequestException, KeyError, ValueError):
            return []

    def _alertmanager_alerts(self) -> list[dict[str, Any]]:
        try:
            resp = self._session.get(self.stack.alertmanager_url + "/api/v2/alerts", timeout=3)
            alerts: list[dict[str, Any]] = resp.json()
            return alerts
        except (requests.RequestException, ValueError):
            return []

    def _incident(
        self, scenario: Scenario, incidents: list[dict[str, Any]] | None = None
    ) -> dict[str, Any] | None:
        """The scenario's incident: the first one opened since the fault by one of its runbooks (in the
        runbooks' order), from ``incidents`` when already fetched."""
        if incidents is None:
            incidents = self._incidents_since_fault(scenario)
        for runbook in scenario.runbooks:
            first = next((i for i in incidents if i.get("runbook_id") == runbook), None)
            if first is not None:
                return first
        return None

    def _incidents_since_fault(self, scenario: Scenario) -> list[dict[str, Any]]:
        """Every incident of the scenario's model opened since its fault, oldest first."""
        try:
            resp = self._session.get(
                self.stack.receiver_url + "/api/v1/incidents",
                params={"model": scenario.model, "limit": "50"},
                headers=self.stack.admin_headers(),
                timeout=3,
            )
            incidents: list[dict[str, Any]] = resp.json()["incidents"]
        except (requests.RequestException, KeyError, ValueError):
            return []
        since = (self.results[scenario.name].fault_at or 0.0) - 1.0
        return sorted(
            (i for i in incidents if (_epoch(i.get("opened_at")) or 0.0) >= since), key=lambda i: i["id"]
        )

    def _incident_detail(self, incident_id: int) -> dict[str, Any] | None:
        try:
            resp = self._session.get(
                f"{self.stack.receiver_url}/api/v1/incidents/{incident_id}",
                headers=self.stack.admin_headers(),
                timeout=3,
            )
            detail: dict[str, Any] = resp.json()
            return detail if resp.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def _observe(
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
                name, at = str(alert["labels"].get("alertname")), _epoch(alert.get("activeAt"))
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
        incident = self._incident(scenario)
        if incident is None:
            return
        result.incident = incident
        if times["webhook received"] is None:
            times["webhook received"] = _epoch(incident.get("opened_at")) or now
        if result.contained:
            self._observe_verified(result, incident, now)
            return
        expect = scenario.expect
        registry = self._registry_snapshot(model)
        if self.dry_run:
            detail = self._incident_detail(int(incident["id"]))
            timeline = detail.get("timeline", []) if detail else []
            would = [
                e for e in timeline if "would" in (str(e.get("message", "")) + str(e.get("kind", ""))).lower()
            ]
            unchanged = self._serving_fields(registry) == self._serving_fields(self._baseline_registry[model])
            if would and unchanged:
                times["containment applied"] = _epoch(would[0].get("at")) or now
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
        detail = self._incident_detail(int(incident["id"]))
        for entry in (detail or {}).get("timeline", []):
            if entry.get("kind") == "contained":
                result.times["verified"] = _epoch(entry.get("at")) or now
                result.verified = True
                return

    # -- the record ----------------------------------------------------------------------------------
    def _settle_floors(self, result: ScenarioResult) -> None:
        """Floors from the measured signals; the signal hop becomes that of the alert setting them."""
        fault_at = result.fault_at or 0.0
        floors, chosen = effective_floors(
            result.config_floors,
            self.floors.after_signal[result.scenario],
            {name: at - fault_at for name, at in result.signals.items()},
        )
        result.floors.update(floors)
        result.signal_alert = chosen
        if chosen is not None:
            result.times[SIGNAL_HOP] = result.signals[chosen]

    def _collect(self, scenario: Scenario) -> None:
        result = self.results[scenario.name]
        result.incidents = self._incidents_since_fault(scenario)
        incident = self._incident(scenario, result.incidents)
        if incident is not None:
            result.incident = incident
            detail = self._incident_detail(int(incident["id"]))
            result.timeline = list((detail or {}).get("timeline", []))
        result.registry = self._registry_snapshot(scenario.model)
        fault_at = result.fault_at or 0.0
        history = self.stack.registry().history(scenario.model, 50)
        result.registry_history = [e.to_dict() for e in reversed(history) if e.at.timestamp() >= fault_at - 1]
        result.server_state = self.stack.server_state(scenario.model)
        sink = self.stack.sink
        result.messages = [
            {"at": m.at, "path": m.path, "channel": m.channel, "text": m.text()}
            for m in (sink.messages() if sink else [])
            if scenario.model in m.text() or scenario.model in str(m.body)
        ]


def run_drill(
    scenarios: Sequence[Scenario],
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    options: StackOptions | None = None,
    keep: bool = False,
) -> DrillReport:
    """Run ``scenarios`` on a fresh stack and return the report; the stack is stopped unless ``keep``."""
    run = DrillRun(scenarios, dry_run=dry_run, progress=progress, options=options)
    try:
        return run.execute()
    finally:
        if not keep:
            run.stop()
