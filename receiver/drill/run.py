"""Run drill scenarios on one native stack: warm up, inject every fault, watch each hop, collect the report.

All scenarios of a run share the stack (Prometheus, Alertmanager, receiver, registry DB) with one model
and one model server per scenario, so the whole set takes about as long as its slowest scenario.
This module decides what happens when; :mod:`receiver.drill.probe` reads the stack,
:mod:`receiver.drill.observe` judges each poll and :mod:`receiver.drill.results` holds the record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import requests

from model_server.traffic import TrafficConfig
from receiver.drill.floors import SIGNAL_HOP, compute_floors, effective_floors
from receiver.drill.observe import ScenarioObserver, first_incident, stage_of
from receiver.drill.probe import StackProbe
from receiver.drill.progress import Progress
from receiver.drill.results import DrillReport, ScenarioResult
from receiver.drill.scenarios import Scenario
from receiver.drill.stack import Stack, StackOptions
from receiver.drill.traffic import NullFeatureTraffic, TrafficThread

__all__ = ["DrillRun", "run_drill"]

DEFAULT_RATE = 8.0
WARMUP_TIMEOUT = 60.0
QUIET_TIMEOUT = 60.0
#: seconds watched after the last scenario ends, for incidents a fault opens after its containment (the
#: drill's compressed keep_firing_for is 10 s, Alertmanager's compressed group_wait 1 s)
AFTERMATH = 15.0
POLL_INTERVAL = 0.5


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
        self._session = requests.Session()
        self.probe = StackProbe(self.stack, self._session)
        self.observer = ScenarioObserver(self.stack, self.probe, dry_run=dry_run)

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

    def _warm_up(self) -> None:
        """Wait until Prometheus sees traffic for every model (the rules' minimum-traffic guards)."""
        deadline = time.monotonic() + WARMUP_TIMEOUT
        models = {s.model for s in self.scenarios}
        while True:
            try:
                rows = self.probe.query("sum by (model) (rate(model_requests_total[10s])) >= 0.5")
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
                    for a in self.probe.firing_alerts()
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
        self.observer.baseline(scenario.model)
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
            firing = self.probe.firing_alerts()
            am_alerts = self.probe.alertmanager_alerts()
            all_messages = self.stack.sink.messages() if self.stack.sink else []
            for name, scenario in list(pending.items()):
                result = self.results[name]
                assert result.fault_at is not None
                messages = [m for m in all_messages if m.at >= result.fault_at]
                self.observer.observe(scenario, result, now, firing, am_alerts, messages)
                if result.contained and scenario.heal_after_containment and not self.dry_run:
                    self._heal(scenario)
                done, reason = self.observer.finished(scenario, result, now)
                if done:
                    result.reason = reason
                    del pending[name]
                    status = "PASS" if result.passed else "FAIL"
                    self.progress.note(f"{name}: {status} - {reason}")
            if pending:
                self.progress.stage(
                    "watching", " | ".join(f"{n}: {stage_of(self.results[n])}" for n in pending)
                )
                time.sleep(POLL_INTERVAL)

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
        result.incidents = self.probe.incidents_since(scenario.model, result.fault_at)
        incident = first_incident(scenario, result.incidents)
        if incident is not None:
            result.incident = incident
            detail = self.probe.incident_detail(int(incident["id"]))
            result.timeline = list((detail or {}).get("timeline", []))
        result.registry = self.probe.registry_snapshot(scenario.model)
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
