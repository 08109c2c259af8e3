"""The drill report as printed: hop times next to their floors, the signal's alert, timeline, messages."""

from __future__ import annotations

import json

from receiver.drill.floors import SIGNAL_HOP
from receiver.drill.report import render_json, render_text
from receiver.drill.results import HOPS, DrillReport, ScenarioResult

FAULT_AT = 1_800_000_000.0


def _result() -> ScenarioResult:
    result = ScenarioResult(
        "bad-release",
        "drill-bad-release",
        "errors",
        "v2 fails half its requests",
        "promote v2",
        "rollback to v1",
        False,
        120.0,
        fault_at=FAULT_AT,
    )
    after = {
        SIGNAL_HOP: 8.9,
        "rule firing": 13.4,
        "alertmanager": 13.4,
        "webhook received": 13.9,
        "containment applied": 13.9,
        "serving contained": 14.4,
        "verified": 43.4,
    }
    result.times.update({hop: FAULT_AT + s for hop, s in after.items()})
    result.floors.update(
        {
            SIGNAL_HOP: 8.9,
            "rule firing": 12.9,
            "alertmanager": 12.9,
            "webhook received": 13.9,
            "containment applied": 13.9,
            "serving contained": 14.4,
            "verified": 14.4,
        }
    )
    result.signals = {
        "ModelErrorBudgetBurnFast": FAULT_AT + 8.9,
        "ModelErrorBudgetBurnMedium": FAULT_AT + 3.1,
    }
    result.signal_alert = "ModelErrorBudgetBurnFast"
    result.contained, result.verified, result.reason = True, True, "contained and verified"
    result.messages = [
        {
            "at": FAULT_AT + 14.0,
            "path": "/chat/ml-incidents",
            "channel": "ml-incidents",
            "text": "SEV1 drill-bad-release: rolled back to v1",
        }
    ]
    return result


def _report() -> DrillReport:
    config = {
        "scrape_interval": 1.0,
        "evaluation_interval": 1.0,
        "worker_poll_interval": 0.2,
        "registry_poll_interval": 0.5,
        "psi_window": 400,
        "time_factor": 30,
        "alerts": {},
    }
    return DrillReport([_result()], config, FAULT_AT - 40, FAULT_AT + 60)


def test_text_lists_every_hop_with_measured_floor_and_excess() -> None:
    text = render_text(_report())
    assert text.startswith("drill PASSED: 1/1 scenario(s) in 100s")
    for hop in HOPS:
        assert hop in text
    rule_line = next(line for line in text.splitlines() if line.strip().startswith("rule firing"))
    assert rule_line.split()[-3:] == ["13.4s", "12.9s", "+0.5s"]
    assert "signal set by ModelErrorBudgetBurnFast" in text
    assert "SEV1 drill-bad-release: rolled back to v1" in text
    assert "PSI window 400 inputs" in text


def test_json_carries_signals_relative_to_the_fault() -> None:
    doc = json.loads(render_json(_report()))
    scenario = doc["scenarios"][0]
    assert scenario["signal_alert"] == "ModelErrorBudgetBurnFast"
    assert round(scenario["signals"]["ModelErrorBudgetBurnMedium"], 1) == 3.1
    contained = next(h for h in scenario["hops"] if h["hop"] == "containment applied")
    assert round(contained["seconds_after_fault"], 1) == 13.9 and contained["floor_seconds"] == 13.9
