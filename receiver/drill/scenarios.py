"""Drill scenarios: for each incident type, the fault to inject and the containment that proves the loop.

A :class:`Scenario` is data: its model name on the shared stack, the set-up before the fault (e.g. a
release already promoted), the fault itself, the page-severity alert rules that can open its incident
(for the configured floor), the expected containment as predicates over the registry state, the model
server's ``/state`` and the messages the chat/pager sink recorded, and a deadline.
:mod:`receiver.drill.stack` executes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from receiver.drill.chatsink import SinkMessage

__all__ = ["SCENARIOS", "Expectation", "Fault", "Scenario", "get_scenario", "scenario_names"]

#: The demo model's feature that the drift scenario shifts (an input the logistic model depends on).
DRIFT_FEATURE = "mean_radius"
#: The feature the broken upstream of the data-quality scenario sends as null.
NULL_FEATURE = "mean_texture"


@dataclass(frozen=True)
class Fault:
    """What the drill breaks at fault time.

    ``faults``: a spec for the model server's ``/admin/faults`` (validated there); ``promote``: a version
    promoted in the registry right after the fault spec is set (a bad release); ``drift``: traffic
    restarted with these feature shifts (standard deviations); ``null_feature``: traffic replaced by a
    client that sends this feature as null; ``kill_server``: SIGKILL the model server.
    """

    faults: Mapping[str, Any] = field(default_factory=dict)
    promote: str | None = None
    drift: Mapping[str, float] = field(default_factory=dict)
    null_feature: str | None = None
    kill_server: bool = False

    def describe(self) -> str:
        parts = []
        if self.faults:
            spec = {k: v for k, v in self.faults.items() if k != "version"}
            scope = self.faults.get("version", "all versions")
            parts.append(f"inject {spec} on {scope}")
        if self.promote:
            parts.append(f"promote {self.promote}")
        if self.drift:
            parts.append("drift " + ", ".join(f"{k} by {v:+g} sd" for k, v in self.drift.items()))
        if self.null_feature:
            parts.append(f"upstream sends {self.null_feature}=null")
        if self.kill_server:
            parts.append("SIGKILL the model server")
        return "; ".join(parts) or "nothing"


RegistryCheck = Callable[[Mapping[str, Any]], bool]
ServerCheck = Callable[[Mapping[str, Any]], bool]
SinkCheck = Callable[[Sequence[SinkMessage], str], bool]


@dataclass(frozen=True)
class Expectation:
    """The containment that must be observed by the deadline.

    ``registry`` gets the model's registry state (``ModelState.to_dict()``), ``server`` the model server's
    ``/state`` JSON, ``sink`` the sink's messages and the model name. A missing predicate is not checked.
    ``registry_actions`` are the audit actions that count as "containment applied" (for the hop time).
    """

    description: str
    registry: RegistryCheck | None = None
    server: ServerCheck | None = None
    sink: SinkCheck | None = None
    registry_actions: tuple[str, ...] = ()
    verified: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    incident_type: str
    summary: str
    model: str
    fault: Fault
    expect: Expectation
    alerts: tuple[str, ...]
    runbooks: tuple[str, ...]
    deadline: float = 120.0
    setup_promote: str | None = None
    traffic: Mapping[str, Any] = field(default_factory=dict)
    heal_after_containment: bool = False

    def with_model(self, model: str) -> Scenario:
        from dataclasses import replace

        return replace(self, model=model)


def _traffic(state: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in (state.get("traffic") or {}).items()}


def _active(version: str) -> RegistryCheck:
    return lambda s: s.get("active_version") == version


def _rolled_back_to(version: str, bad: str) -> RegistryCheck:
    def check(state: Mapping[str, Any]) -> bool:
        unhealthy = {str(v.get("version")) for v in state.get("versions", []) if v.get("unhealthy")}
        return state.get("active_version") == version and bad in unhealthy

    return check


def _split_to(version: str, weight: float) -> Callable[[Mapping[str, Any]], bool]:
    return lambda s: abs(_traffic(s).get(version, 0.0) - weight) < 0.01


def _serving_active(version: str) -> ServerCheck:
    return lambda s: s.get("active_version") == version and version in (s.get("loaded_versions") or [])


def _mode(mode: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda s: s.get("mode") == mode


def _guardrail_raised(state: Mapping[str, Any]) -> bool:
    return int(state.get("guardrail_level") or 0) > 0 and state.get("tools_blocked") is True


def _paged(messages: Sequence[SinkMessage], model: str) -> bool:
    return any(
        m.path.startswith("/pager")
        and isinstance(m.body, dict)
        and m.body.get("event_action") == "trigger"
        and model in m.text() + str(m.body)
        for m in messages
    )


def _ticket(channel: str, fragment: str = "") -> SinkCheck:
    return lambda messages, model: any(
        m.path.startswith("/chat/") and m.channel == channel and model in m.text() and fragment in m.text()
        for m in messages
    )


def _all(*checks: SinkCheck) -> SinkCheck:
    return lambda messages, model: all(c(messages, model) for c in checks)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="bad-release",
        incident_type="errors",
        summary="v2 (the worse version) is promoted and fails half of its requests",
        model="drill-bad-release",
        fault=Fault(faults={"version": "v2", "error_rate": 0.5}, promote="v2"),
        expect=Expectation(
            "rollback to v1, v2 marked unhealthy, server serves v1",
            registry=_rolled_back_to("v1", "v2"),
            server=_serving_active("v1"),
            registry_actions=("rollback",),
        ),
        # the release watch (cause="release") opens it; Alertmanager inhibits the burn-rate pages meanwhile,
        # so the bad-release runbook is the one that runs
        alerts=("ModelReleaseErrorRatioHigh", "ModelErrorBudgetBurnFast", "ModelErrorBudgetBurnMedium"),
        runbooks=("bad-release",),
    ),
    Scenario(
        name="latency-spike",
        incident_type="latency",
        summary="a release (v2) answers 300 ms slower, three times the 100 ms SLO",
        model="drill-latency",
        fault=Fault(faults={"version": "v2", "latency_seconds": 0.3}, promote="v2"),
        expect=Expectation(
            "rollback to v1 (recent release) and a page, server serves v1",
            registry=_active("v1"),
            server=_serving_active("v1"),
            sink=_paged,
            registry_actions=("rollback",),
        ),
        # the release watch's latency half opens it (bad-release: rollback and a page)
        alerts=("ModelReleaseLatencyHigh", "ModelLatencyP95High"),
        runbooks=("bad-release",),
    ),
    Scenario(
        name="feature-drift",
        incident_type="drift",
        summary=f"the traffic's {DRIFT_FEATURE} shifts by 1 standard deviation on v2 (v1 is last known good)",
        model="drill-drift",
        setup_promote="v2",
        # 1 sd: PSI far above 0.2 while few values leave the baseline range (3 sd would also trip the
        # data-quality out_of_range rule, whose fallback then holds the model's cooldown)
        fault=Fault(drift={DRIFT_FEATURE: 1.0}),
        expect=Expectation(
            "traffic split: 50 % to v1 (last known good), served by the model server",
            registry=_split_to("v1", 50.0),
            server=_split_to("v1", 50.0),
            registry_actions=("split", "split_to_last_known_good", "traffic_split"),
        ),
        alerts=("ModelFeatureDriftHigh",),
        runbooks=("feature-drift",),
        # refills the drill's 400-input PSI window in 20 s once the drift is withdrawn
        traffic={"rate": 20.0},
        heal_after_containment=True,
        deadline=150.0,
    ),
    Scenario(
        name="prediction-shift",
        incident_type="prediction_shift",
        summary="the release v2 serves inverted scores (1 - score, a corrupt artifact): its mean moves "
        "0.45 baseline standard deviations (v1 is last known good)",
        model="drill-prediction",
        setup_promote="v2",
        # v2 active with v1 as last known good (v1 served healthily before), so the runbook's SEV2 split
        # has somewhere to go; inverting v1 itself would leave no last known good to split to
        fault=Fault(faults={"version": "v2", "corrupt_rate": 1.0}),
        expect=Expectation(
            "traffic split: 50 % to v1 (last known good), served by the model server",
            registry=_split_to("v1", 50.0),
            server=_split_to("v1", 50.0),
            registry_actions=("split", "split_to_last_known_good", "traffic_split"),
        ),
        alerts=("ModelPredictionMeanShift",),
        runbooks=("prediction-shift",),
        # the split halves the damage but does not cure v2: the drill then withdraws the corruption (the
        # artifact is fixed) so the runbook's verification sees the mean back at its baseline
        heal_after_containment=True,
        deadline=150.0,
    ),
    Scenario(
        name="auc-drop",
        incident_type="auc_drop",
        summary="v1's scores are inverted while labels arrive through /feedback: online AUC collapses",
        model="drill-auc",
        traffic={"label_delay": 1.0, "label_fraction": 1.0},
        fault=Fault(faults={"version": "v1", "corrupt_rate": 1.0}),
        expect=Expectation(
            "a ticket on ml-tickets (no automatic change to serving)",
            registry=_active("v1"),
            sink=_ticket("ml-tickets", "AUC"),
            verified=False,
        ),
        alerts=("ModelAUCDrop",),
        runbooks=("auc-drop",),
        deadline=150.0,
    ),
    Scenario(
        name="toxicity",
        incident_type="toxicity",
        summary="30 % of the LLM's replies are toxic",
        model="drill-llm",
        traffic={"text": True},
        fault=Fault(faults={"toxic_rate": 0.3}),
        expect=Expectation(
            "guardrail raised and risky tools blocked in the registry and on the server, safety paged",
            registry=_guardrail_raised,
            server=_guardrail_raised,
            sink=_paged,
            registry_actions=("guardrail", "set_guardrail"),
        ),
        alerts=("ModelToxicOutputRatioHigh",),
        runbooks=("toxic-output",),
    ),
    Scenario(
        name="data-quality",
        incident_type="data_quality",
        summary=f"the upstream feature store sends {NULL_FEATURE} as null in every request",
        model="drill-data",
        fault=Fault(null_feature=NULL_FEATURE),
        expect=Expectation(
            "fallback mode in the registry and on the server",
            registry=_mode("fallback"),
            server=_mode("fallback"),
            registry_actions=("mode", "set_mode", "fallback"),
        ),
        alerts=("ModelInputProblemsHigh",),
        runbooks=("data-quality",),
    ),
    Scenario(
        name="server-down",
        incident_type="availability",
        summary="the model server process is killed",
        model="drill-down",
        fault=Fault(kill_server=True),
        expect=Expectation(
            "the serving on-call is paged; nothing to roll back (registry unchanged)",
            registry=_active("v1"),
            sink=_paged,
            verified=False,
        ),
        alerts=("ModelTargetDown", "ModelMetricsAbsent"),
        runbooks=("model-availability",),
    ),
)


def scenario_names() -> list[str]:
    return [s.name for s in SCENARIOS]


def get_scenario(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
