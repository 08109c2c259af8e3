"""Render a drill report as text (timeline, messages, registry state, hop times next to their floors)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from receiver.drill.floors import SIGNAL_HOP
from receiver.drill.results import HOPS, DrillReport, ScenarioResult

__all__ = ["render_json", "render_text"]

MESSAGE_CHARS = 4000  # messages as posted, whole: they are what on-call reads


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:6.1f}s"


def _clock(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def _offset(at: str | float | None, fault_at: float | None) -> str:
    if at is None or fault_at is None:
        return "       "
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return "       "
    return f"{at - fault_at:+7.1f}s"


def _hops(result: ScenarioResult) -> list[str]:
    lines = [f"  {'hop':<22}{'measured':>10}{'floor':>10}{'over floor':>12}"]
    for hop in HOPS:
        measured, floor = result.elapsed(hop), result.floors.get(hop)
        over = "-" if measured is None or floor is None else f"{measured - floor:+.1f}s"
        lines.append(f"  {hop:<22}{_secs(measured):>10}{_secs(floor):>10}{over:>12}")
    return lines


def _registry(state: dict[str, Any]) -> str:
    unhealthy = [v["version"] for v in state.get("versions", []) if v.get("unhealthy")]
    return (
        f"active={state.get('active_version')} traffic={state.get('traffic')} mode={state.get('mode')} "
        f"guardrail={state.get('guardrail_level')} tools_blocked={state.get('tools_blocked')} "
        f"unhealthy={unhealthy or 'none'} "
        f"last_known_good={state.get('last_known_good')}"
    )


def _scenario(result: ScenarioResult) -> list[str]:
    status = "PASS" if result.passed else "FAIL"
    lines = [
        "",
        f"== {result.scenario} [{status}]{' (dry run)' if result.dry_run else ''} - model {result.model}",
        f"  fault:    {result.fault} (at {_clock(result.fault_at)} UTC)",
        f"  expected: {result.expected}",
        f"  outcome:  {result.reason}",
    ]
    if result.healed_at is not None:
        healed = _offset(result.healed_at, result.fault_at).strip()
        lines.append(f"  healed:   fault withdrawn {healed} after the fault, once contained")
    lines += [
        "",
        "  times from the fault. floor: the earliest the config allows once the signal holds,",
        "  signal + for: + group_wait (+ registry poll to serve). The signal's own floor is one",
        "  scrape + one evaluation; the rest of its time is the rule window filling with the fault:",
    ]
    lines += _hops(result)
    if result.signal_alert is not None:
        others = ", ".join(
            f"{name} {_offset(at, result.fault_at).strip()}"
            for name, at in sorted(result.signals.items())
            if name != result.signal_alert
        )
        also = f" (also holding: {others})" if others else ""
        lines.append(f"  signal set by {result.signal_alert}{also}")
    lines += ["", "  incident timeline:"]
    if result.incident:
        inc = result.incident
        lines.append(
            f"    incident #{inc.get('id')} runbook={inc.get('runbook_id')} "
            f"state={inc.get('state')} severity={inc.get('severity')}"
        )
    main_id = result.incident.get("id") if result.incident else None
    extra = [i for i in result.incidents if i.get("id") != main_id]
    for other in extra:  # a fault should be one incident: name every other one it opened
        lines.append(
            f"    also opened: incident #{other.get('id')} runbook={other.get('runbook_id')} "
            f"state={other.get('state')} at {_offset(other.get('opened_at'), result.fault_at)}"
        )
    for entry in result.timeline:
        lines.append(
            f"    {_offset(entry.get('at'), result.fault_at)} {entry.get('kind', ''):<18} "
            f"{str(entry.get('message', ''))[:160]}"
        )
    if not result.timeline:
        lines.append("    (no incident)")
    lines += ["", "  messages as posted:"]
    for msg in result.messages:
        text = msg["text"].replace("\n", "\n      ")[:MESSAGE_CHARS]
        lines.append(f"    {_offset(msg['at'], result.fault_at)} [{msg['channel']}] {text}")
    if not result.messages:
        lines.append("    (none)")
    lines += ["", "  registry changes since the fault:"]
    for entry in result.registry_history:
        lines.append(
            f"    {_offset(entry.get('at'), result.fault_at)} {entry.get('action'):<26} "
            f"by {entry.get('actor')}: {entry.get('reason')}"
        )
    lines.append(f"  final registry state: {_registry(result.registry)}")
    server = result.server_state
    lines.append(
        "  model server serves: "
        + (
            "unreachable"
            if server is None
            else f"active={server.get('active_version')} traffic={server.get('traffic')} "
            f"mode={server.get('mode')} guardrail={server.get('guardrail_level')} "
            f"tools_blocked={server.get('tools_blocked')}"
        )
    )
    return lines


def render_text(report: DrillReport) -> str:
    config = report.floors_config
    lines = [
        f"drill {'PASSED' if report.passed else 'FAILED'}: {sum(r.passed for r in report.results)}/"
        f"{len(report.results)} scenario(s) in {report.finished_at - report.started_at:.0f}s",
        f"config: scrape {config.get('scrape_interval')}s, "
        f"evaluation {config.get('evaluation_interval')}s, "
        f"receiver worker poll {config.get('worker_poll_interval')}s, registry poll "
        f"{config.get('registry_poll_interval')}s, PSI window {config.get('psi_window')} inputs, "
        f"time factor 1/{config.get('time_factor')}, registry {config.get('registry', 'sqlite')}",
    ]
    if report.dropped_settings:
        lines.append(
            "note: this receiver does not know the setting(s) "
            + ", ".join(report.dropped_settings)
            + " (left out of its config)"
        )
    for problem in report.problems:
        lines.append(f"problem: {problem}")
    for result in report.results:
        lines += _scenario(result)
    lines += [
        "",
        "summary:",
        f"  {'scenario':<18}{'result':<8}{'signal':>9}{'contained':>11}{'floor':>9}{'verified':>10}",
    ]
    for r in report.results:
        lines.append(
            f"  {r.scenario:<18}{'PASS' if r.passed else 'FAIL':<8}"
            f"{_secs(r.elapsed(SIGNAL_HOP)):>9}"
            f"{_secs(r.elapsed('containment applied')):>11}"
            f"{_secs(r.floors.get('containment applied')):>9}"
            f"{_secs(r.elapsed('verified')):>10}"
        )
    return "\n".join(lines) + "\n"


def render_json(report: DrillReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)
