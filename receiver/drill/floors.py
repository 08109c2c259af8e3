"""The floor a drill's hops cannot beat, implied by the configuration it runs with.

From the fault: the rule fires no sooner than one scrape, one evaluation and the rule's ``for:``; the
webhook adds the route's ``group_wait``; the containment adds the receiver worker's poll; the model server
serves it after its registry poll; verification cannot precede containment (the responder may count
the runbook's ``verify.for`` from before the containment, so that is not added). Signal build-up (a
rate window filling, a PSI window drifting) comes on top and is what the measured time shows beyond it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from receiver.drill.scenarios import Scenario
from receiver.rulegen import parse_duration
from receiver.runbooks.matchers import parse_matcher

__all__ = ["Floors", "compute_floors", "route_group_wait"]


@dataclass(frozen=True)
class Floors:
    config: dict[str, Any]
    per_scenario: dict[str, dict[str, float | None]]


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
    from receiver.drill.stack import load_yaml

    prom = load_yaml(stack.config_paths.prometheus)
    rules = _alert_rules(load_yaml(stack.config_paths.rules))
    am = load_yaml(stack.config_paths.alertmanager)
    scrape = _seconds(prom.get("global", {}).get("scrape_interval"), 60.0)
    evaluation = _seconds(prom.get("global", {}).get("evaluation_interval"), 60.0)
    worker = float(stack.options.worker_poll_interval)
    registry_poll = float(stack.options.registry_poll_interval)
    alerts: dict[str, dict[str, float]] = {}
    config: dict[str, Any] = {
        "scrape_interval": scrape, "evaluation_interval": evaluation, "worker_poll_interval": worker,
        "registry_poll_interval": registry_poll, "time_factor": getattr(stack, "factor", None),
              "alerts": alerts}
    out: dict[str, dict[str, float | None]] = {}
    for scenario in scenarios:
        candidates = []
        for name in scenario.alerts:
            rule = rules.get(name)
            if rule is None:
                continue
            labels = {"incident_type": scenario.incident_type,
                      **{k: str(v) for k, v in rule.get("labels", {}).items()}}
            for_s = _seconds(rule.get("for"), 0.0)
            wait = route_group_wait(am.get("route", {}), labels)
            alerts[name] = {"for": for_s, "group_wait": wait}
            candidates.append((for_s + wait, for_s, wait))
        if not candidates:
            out[scenario.name] = {}
            continue
        _, for_s, wait = min(candidates)
        firing = scrape + evaluation + for_s
        applied = firing + wait + worker
        verify_for = _verify_for(stack, scenario)
        serving = applied + registry_poll if scenario.expect.server is not None else None
        out[scenario.name] = {
            "rule firing": firing,
            "alertmanager": firing,
            "webhook received": firing + wait,
            "containment applied": applied,
            "serving contained": serving,
            # the responder may look back over the verify window, so containment is the only hard floor
            "verified": (serving or applied) if verify_for is not None else None,
        }
    return Floors(config, out)


def _verify_for(stack: Any, scenario: Scenario) -> float | None:
    from receiver.drill.stack import load_yaml

    for runbook in reversed(scenario.runbooks):
        path = stack.runbooks_dir / f"{runbook}.yml"
        if path.exists():
            doc = load_yaml(path) or {}
            verify = doc.get("verify") or {}
            return _seconds(verify.get("for"), 0.0) if verify else None
    return None
