"""The floor a drill's hops cannot beat, implied by the configuration it runs with.

Two parts. *Signal build-up*: the injected fault must push a windowed statistic (an error ratio over a
rate window, a PSI window, a mean over a window) over the rule's threshold. How long that takes depends
on the window, the threshold and the fault's size, not on the loop; the drill measures it as the
Prometheus alert's ``activeAt`` (the evaluation at which the expression first held); the configuration's
own term for it is one scrape plus one evaluation interval (an upper bound on the phase delay: a scrape
right after the fault makes it shorter, as when a killed server's next scrape fails). *The loop*: once
the signal holds, the rule fires after its ``for:``; the webhook adds the route's ``group_wait``; the
containment adds nothing configured (the webhook's commit wakes the receiver's worker, whose poll interval
is only a fallback); the model server serves it after its registry poll; verification cannot precede
containment (the responder may count the runbook's ``verify.for`` from before the containment, so that is
not added).

:func:`compute_floors` gives both: floors from the fault assuming an instant signal, and, per alert that
can open the scenario's incident, the loop's offsets from that alert's signal. :func:`effective_floors`
combines them with the measured signal times: the alert allowing the earliest containment sets the floor,
and each hop's floor is the later of that and the instant-signal floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from receiver.drill.scenarios import Scenario
from receiver.rulegen import parse_duration
from receiver.runbooks.matchers import parse_matcher
from receiver.runbooks.sections import Verify

__all__ = ["SIGNAL_HOP", "Floors", "compute_floors", "effective_floors", "route_group_wait"]

#: The hop at which the fault's signal first holds over the rule's threshold (Prometheus ``activeAt``).
SIGNAL_HOP = "signal over threshold"


Hops = dict[str, float | None]


@dataclass(frozen=True)
class Floors:
    config: dict[str, Any]
    #: per scenario and hop: seconds after the fault, assuming the signal holds at the first evaluation
    per_scenario: dict[str, Hops]
    #: per scenario, per alert that can open its incident, per hop: the loop's seconds after that alert's
    #: expression first holds (``for:``, group_wait, polls)
    after_signal: dict[str, dict[str, Hops]]


def effective_floors(
    from_fault: Hops, after_signal: Mapping[str, Hops], signal_elapsed: Mapping[str, float]
) -> tuple[Hops, str | None]:
    """Each hop's floor given the measured signal times (seconds after the fault, per alert name).

    The alert whose loop allows the earliest containment sets the floor; each hop's floor is the later of
    that and the instant-signal floor. Returns the floors and the alert chosen (None: nothing measured).
    """

    def contained_at(name: str) -> float:
        offset = after_signal[name].get("containment applied")
        return signal_elapsed[name] + (offset if offset is not None else 0.0)

    measured = [name for name in signal_elapsed if name in after_signal]
    if not measured:
        return dict(from_fault), None
    chosen = min(measured, key=lambda name: (contained_at(name), name))
    loop, signal = after_signal[chosen], signal_elapsed[chosen]
    out: Hops = {}
    for hop, floor in from_fault.items():
        offset = loop.get(hop)
        out[hop] = floor if floor is None or offset is None else max(floor, signal + offset)
    return out, chosen


def _seconds(value: Any, default: float) -> float:
    return parse_duration(str(value)) if value is not None else default


def route_group_wait(route: Mapping[str, Any], labels: Mapping[str, str], inherited: float = 30.0) -> float:
    """``group_wait`` of the route an alert with ``labels`` lands on (first matching child, recursively)."""
    wait = _seconds(route.get("group_wait"), inherited)
    for child in route.get("routes") or []:
        matchers = [parse_matcher(m) for m in child.get("matchers") or []]
        if all(m.matches(labels) for m in matchers):
            return route_group_wait(child, labels, wait)
    return wait


def _alert_rules(rules_doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules_doc.get("groups", []) for r in g.get("rules", []) if "alert" in r}


def compute_floors(stack: Any, scenarios: Sequence[Scenario]) -> Floors:
    """Floors per scenario and hop (seconds after the fault) from the stack's generated configs."""
    from receiver.drill.stackfiles import load_yaml

    prom = load_yaml(stack.config_paths.prometheus)
    rules = _alert_rules(load_yaml(stack.config_paths.rules))
    am = load_yaml(stack.config_paths.alertmanager)
    scrape = _seconds(prom.get("global", {}).get("scrape_interval"), 60.0)
    evaluation = _seconds(prom.get("global", {}).get("evaluation_interval"), 60.0)
    worker = float(stack.options.worker_poll_interval)
    registry_poll = float(stack.options.registry_poll_interval)
    alerts: dict[str, dict[str, float]] = {}
    config: dict[str, Any] = {
        "scrape_interval": scrape,
        "evaluation_interval": evaluation,
        "worker_poll_interval": worker,
        "registry_poll_interval": registry_poll,
        "time_factor": getattr(stack, "factor", None),
        "psi_window": getattr(stack.options, "psi_window", None),
        "alerts": alerts,
        "registry": getattr(stack.options, "registry", "sqlite"),
    }
    out: dict[str, Hops] = {}
    after: dict[str, dict[str, Hops]] = {}
    for scenario in scenarios:
        has_server = scenario.expect.server is not None
        verifies = _verify_for(stack, scenario) is not None
        loops: dict[str, Hops] = {}
        for name in scenario.alerts:
            rule = rules.get(name)
            if rule is None:
                continue
            labels = {
                "incident_type": scenario.incident_type,
                **{k: str(v) for k, v in rule.get("labels", {}).items()},
            }
            for_s = _seconds(rule.get("for"), 0.0)
            wait = route_group_wait(am.get("route", {}), labels)
            alerts[name] = {"for": for_s, "group_wait": wait}
            loop: Hops = {  # seconds after the alert's expression first holds
                SIGNAL_HOP: 0.0,
                "rule firing": for_s,
                "alertmanager": for_s,
                "webhook received": for_s + wait,
                "containment applied": for_s + wait,
                "serving contained": for_s + wait + registry_poll if has_server else None,
            }
            # the responder may look back over the verify window, so containment is the only hard floor
            verified = loop["serving contained"] or loop["containment applied"]
            loop["verified"] = verified if verifies else None
            loops[name] = loop
        after[scenario.name] = loops
        if not loops:
            out[scenario.name] = {}
            continue
        fastest = min(loops, key=lambda n: (loops[n]["containment applied"] or 0.0, n))
        signal = scrape + evaluation
        out[scenario.name] = {hop: None if v is None else signal + v for hop, v in loops[fastest].items()}
    return Floors(config, out, after)


def _verify_for(stack: Any, scenario: Scenario) -> float | None:
    from receiver.drill.stackfiles import load_yaml

    for runbook in reversed(scenario.runbooks):
        path = stack.runbooks_dir / f"{runbook}.yml"
        if path.exists():
            doc = load_yaml(path) or {}
            if not doc.get("verify"):
                return None
            return Verify.from_mapping(doc["verify"]).for_.seconds  # the responder's default when unset
    return None
