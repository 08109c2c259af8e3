"""``receiver backtest``: replay alert rules over a Prometheus's history; score against labelled incidents.

Exit status: 0 on success, 2 on bad input (time, rule file, incidents file) or an unreachable Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from receiver.backtest.engine import run_backtest
from receiver.backtest.report import render_text, to_json
from receiver.backtest.rules import load_rule_files, parse_duration
from receiver.backtest.scoring import load_incidents, score
from receiver.backtest.times import parse_time
from receiver.backtest.tune import (
    DEFAULT_FOR_FACTORS,
    DEFAULT_THRESHOLD_FACTORS,
    render_tuning,
    tune,
    tuning_json,
)
from receiver.errors import BacktestError, PrometheusError
from receiver.prom import PrometheusClient

__all__ = ["handle", "register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="replay alert rules over Prometheus history and score them against labelled incidents",
        description="Evaluate alerting rules (recording rules inlined) over [--start, --end] with range "
        "queries at each group's interval, apply for:/keep_firing_for, and report when each "
        "alert would have fired; with --incidents, precision, recall and detection delay.",
    )
    parser.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    parser.add_argument(
        "--rules",
        required=True,
        nargs="+",
        metavar="FILE_OR_DIR",
        help="rule files or directories of *.yml/*.yaml",
    )
    parser.add_argument("--start", required=True, help="RFC 3339, Unix seconds, or now-6h")
    parser.add_argument("--end", required=True, help="RFC 3339, Unix seconds, or now")
    parser.add_argument(
        "--step",
        default=None,
        help="override every group's evaluation interval (e.g. 1m; default: the group's)",
    )
    parser.add_argument("--incidents", default=None, metavar="FILE.yml", help="labelled incidents to score")
    parser.add_argument(
        "--grace",
        default="10m",
        help="how long after an incident's end a firing still counts as detecting it (default 10m)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per Prometheus query")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="sweep each alert's threshold and for: over a grid (needs --incidents), print "
        "the front of false firings vs recall and delay, today's setting, a rule diff",
    )
    parser.add_argument(
        "--tune-alert",
        action="append",
        default=[],
        metavar="ALERTNAME",
        help="with --tune: only this alert (repeatable)",
    )
    parser.add_argument(
        "--threshold-factors",
        default=None,
        metavar="F,F,...",
        help="with --tune: threshold multipliers (default 0.5,0.75,1,1.25,1.5,2)",
    )
    parser.add_argument(
        "--for-factors",
        default=None,
        metavar="F,F,...",
        help="with --tune: for: multipliers (default 0,0.25,0.5,1,1.5,2)",
    )
    parser.set_defaults(func=handle)


def _duration(text: str, what: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise BacktestError(f"{what}: {exc}") from exc


def _factors(text: str | None, default: tuple[float, ...], what: str) -> tuple[float, ...]:
    if text is None:
        return default
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise BacktestError(f"{what}: {text!r} is not a comma-separated list of numbers") from None
    if not values or any(v < 0 or v != v for v in values):
        raise BacktestError(f"{what}: {text!r} must list non-negative numbers")
    return values


def handle(args: argparse.Namespace) -> int:
    try:
        start = parse_time(args.start, "--start")
        end = parse_time(args.end, "--end")
        if end <= start:
            raise BacktestError(f"--end ({args.end}) must be after --start ({args.start})")
        step = _duration(args.step, "--step") if args.step else None
        if step is not None and step <= 0:
            raise BacktestError("--step must be positive")
        grace = _duration(args.grace, "--grace")
        groups = load_rule_files(args.rules)
        incidents = load_incidents(args.incidents) if args.incidents else None
        if (args.tune or args.tune_alert) and incidents is None:
            raise BacktestError("--tune needs --incidents (labelled incidents to score each setting against)")
        threshold_factors = _factors(args.threshold_factors, DEFAULT_THRESHOLD_FACTORS, "--threshold-factors")
        for_factors = _factors(args.for_factors, DEFAULT_FOR_FACTORS, "--for-factors")
        try:
            client = PrometheusClient(args.prometheus, timeout=args.timeout)
            client.query("vector(1)")
        except ValueError as exc:
            raise BacktestError(f"--prometheus: {exc}") from exc
        except PrometheusError as exc:
            raise BacktestError(f"Prometheus at {args.prometheus} is not usable: {exc.message}") from exc
        if (args.tune or args.tune_alert) and incidents is not None:
            tunings = tune(
                client,
                groups,
                incidents,
                start,
                end,
                alerts=args.tune_alert,
                step=step,
                grace=grace,
                threshold_factors=threshold_factors,
                for_factors=for_factors,
            )
            if args.json:
                print(json.dumps(tuning_json(tunings), indent=2))
            else:
                sys.stdout.write(render_tuning(tunings))
            return 0
        result = run_backtest(client, groups, start, end, step=step)
    except BacktestError as exc:
        print(f"receiver backtest: error: {exc.message}", file=sys.stderr)
        for problem in exc.problems:
            if str(problem) not in exc.message:
                print(f"  - {problem}", file=sys.stderr)
        return 2
    scored = score(result, incidents, grace=grace) if incidents is not None else None
    if args.json:
        print(json.dumps(to_json(result, scored), indent=2))
    else:
        sys.stdout.write(render_text(result, scored))
    return 0
