"""Time to containment per drill scenario, next to the floor the configuration implies.

    .venv/bin/python bench/drill.py [--scenario NAME ...] [--json]

Runs the native drill (real Prometheus, Alertmanager, receiver, registry, model servers; time-compressed
rules) with every scenario on one stack and prints, per scenario, the measured seconds from the fault to
each hop and the floor. The signal (the alert expression first holding, Prometheus's ``activeAt``) is
measured: how long the fault takes to push a windowed statistic over its threshold is the model's and the
rule window's, not the loop's. The floor of containment is then signal + for: + group_wait (see
``receiver.drill.floors``); "instant" is the same with the signal at its own floor (one scrape + one
evaluation). Target: containment within floor + 3 s. The engine's share (rule firing -> containment) is
shown against its floor, the route's group_wait.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from receiver.drill.floors import SIGNAL_HOP
from receiver.drill.progress import Progress
from receiver.drill.run import run_drill
from receiver.drill.scenarios import SCENARIOS, get_scenario

TARGET_SLACK_S = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", dest="scenarios")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenarios = [get_scenario(n) for n in args.scenarios] if args.scenarios else list(SCENARIOS)
    report = run_drill(scenarios, progress=Progress(sys.stderr, quiet=args.json))
    rows: list[dict[str, Any]] = []
    for r in report.results:
        measured, floor = r.elapsed("containment applied"), r.floors.get("containment applied")
        rows.append(
            {
                "scenario": r.scenario,
                "contained": r.contained,
                "verified": r.verified,
                "signal_s": r.elapsed(SIGNAL_HOP),
                "signal_floor_s": r.config_floors.get(SIGNAL_HOP),
                "instant_signal_floor_s": r.config_floors.get("containment applied"),
                "firing_s": r.elapsed("rule firing"),
                "webhook_s": r.elapsed("webhook received"),
                "containment_s": measured,
                "floor_s": floor,
                "over_floor_s": None if measured is None or floor is None else measured - floor,
                "serving_s": r.elapsed("serving contained"),
                "verified_s": r.elapsed("verified"),
                "within_target": measured is not None
                and floor is not None
                and measured <= floor + TARGET_SLACK_S,
            }
        )
        # The engine's own share, from the rule firing to containment, against the loop's terms after the
        # rule fires: the route's group_wait (the webhook's commit wakes the receiver's worker).
        firing = r.elapsed("rule firing")
        firing_floor = r.config_floors.get("rule firing")
        applied_floor = r.config_floors.get("containment applied")
        engine = engine_floor = None
        if (
            measured is not None
            and firing is not None
            and firing_floor is not None
            and applied_floor is not None
        ):
            engine, engine_floor = measured - firing, applied_floor - firing_floor
        rows[-1]["engine_s"], rows[-1]["engine_floor_s"] = engine, engine_floor
        rows[-1]["engine_within_target"] = (
            engine is not None and engine_floor is not None and engine <= engine_floor + TARGET_SLACK_S
        )
    if args.json:
        print(json.dumps({"config": report.floors_config, "scenarios": rows}, indent=2))
        return 0 if report.passed else 1

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    print(
        f"{'scenario':<18}{'signal':>7}{'firing':>8}{'webhook':>9}{'contain':>9}{'floor':>7}{'over':>7}"
        f"{'instant':>9}{'serving':>9}{'verified':>10}  target (floor+{TARGET_SLACK_S:g}s)"
        f"{'engine':>9}{'floor':>7}  engine target"
    )
    for row in rows:
        print(
            f"{row['scenario']:<18}{fmt(row['signal_s']):>7}{fmt(row['firing_s']):>8}"
            f"{fmt(row['webhook_s']):>9}"
            f"{fmt(row['containment_s']):>9}{fmt(row['floor_s']):>7}{fmt(row['over_floor_s']):>7}"
            f"{fmt(row['instant_signal_floor_s']):>9}{fmt(row['serving_s']):>9}"
            f"{fmt(row['verified_s']):>10}  "
            f"{'met' if row['within_target'] else 'missed':<22}{fmt(row['engine_s']):>9}"
            f"{fmt(row['engine_floor_s']):>7}  {'met' if row['engine_within_target'] else 'missed'}"
        )
    config = report.floors_config
    print(
        f"\nscrape {config['scrape_interval']}s, evaluation {config['evaluation_interval']}s, "
        f"receiver poll {config['worker_poll_interval']}s (fallback: the webhook wakes it), "
        f"registry poll {config['registry_poll_interval']}s, PSI window {config['psi_window']} inputs; "
        f"per alert for:/group_wait: {json.dumps(config['alerts'])}"
    )
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
