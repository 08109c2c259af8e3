"""What a drill run records: per scenario, when each hop happened next to its floor; for the run, the report.

Split from :mod:`receiver.drill.run` so the records have one home that the run fills in, the report
renders (:mod:`receiver.drill.report`) and tests build by hand, without importing the run's traffic and
HTTP machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from receiver.drill.floors import SIGNAL_HOP

__all__ = ["HOPS", "DrillReport", "ScenarioResult"]

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
