"""``receiver drill``: break a model on purpose on a real local stack and watch the loop contain it.

Starts Prometheus, Alertmanager, the receiver, a registry with the demo v1 (good) and v2 (worse), one demo
model server per scenario, traffic and a chat/pager sink on free loopback ports, all from this repo's
config files (time-compressed by ``receiver.rulegen``); injects the fault(s); shows progress; prints the
incident timeline, the messages as posted, the registry state and each hop's time next to its floor.
Exit status: 0 when every expected containment happened by its deadline, 1 when not, 2 when the stack
could not start. Every process it started is stopped on exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["handle", "register"]


class _Interrupted(Exception):
    pass


def register(subparsers: Any) -> None:
    from receiver.drill.scenarios import scenario_names

    names = scenario_names()
    parser = subparsers.add_parser(
        "drill",
        help="run an incident drill on a local stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        action="append",
        dest="scenarios",
        metavar="NAME",
        help=f"scenario to run (repeatable, or 'all'): {', '.join(names)}",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="tabletop: the receiver acts in dry-run (the timeline says what would have run)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the stack up after the report and print its URLs (Ctrl-C stops it)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON (no progress line)")
    parser.add_argument("--workdir", type=Path, help="keep configs, logs and data here instead of a temp dir")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--ha",
        action="store_true",
        help="the production shape: a clustered Alertmanager pair, each peer posting to its "
        "own receiver replica, both replicas on one PostgreSQL started for the drill",
    )
    parser.add_argument(
        "--registry",
        choices=("sqlite", "mlflow"),
        default="sqlite",
        help="model registry: a SQLite file (default) or a real local 'mlflow server' "
        "(SQLite backend store, local artifact root; needs the mlflow extra)",
    )
    parser.set_defaults(func=handle)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted(f"signal {signum}")


def handle(args: argparse.Namespace) -> int:
    from receiver.drill.progress import Progress
    from receiver.drill.scenarios import SCENARIOS, get_scenario, scenario_names
    from receiver.errors import ReceiverError

    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:<18} {s.incident_type:<17} {s.summary}\n{'':<36}expect: {s.expect.description}")
        return 0
    wanted = args.scenarios or []
    if not wanted:
        print(
            f"error: name a scenario with --scenario (one of: {', '.join(scenario_names())}, all)",
            file=sys.stderr,
        )
        return 2
    try:
        scenarios = list(SCENARIOS) if "all" in wanted else [get_scenario(n) for n in dict.fromkeys(wanted)]
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2

    try:
        from receiver.drill.report import render_json, render_text
        from receiver.drill.run import DrillRun
        from receiver.drill.stack import StackOptions
    except ImportError as exc:  # the demo model server's stack is an extra
        print(
            f"error: receiver drill needs the model-server extra (pip install "
            f"'ml-incident-runbooks[model-server]'): {exc}",
            file=sys.stderr,
        )
        return 2

    progress = Progress(quiet=args.json)
    run = DrillRun(
        scenarios,
        dry_run=args.dry_run,
        progress=progress,
        options=StackOptions(workdir=args.workdir, ha=args.ha, registry=args.registry),
    )
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            report = run.execute()
        except _Interrupted as exc:
            progress.done()
            print(f"interrupted ({exc}); stopping the stack", file=sys.stderr)
            return 130
        except (ReceiverError, TimeoutError, OSError) as exc:
            progress.done()
            message = exc.message if isinstance(exc, ReceiverError) else str(exc)
            print(f"error: drill stack failed: {message}", file=sys.stderr)
            return 2
        print(render_json(report) if args.json else render_text(report), end="")
        if args.keep:
            print("\nstack left up (Ctrl-C stops it):")
            for name, url in run.stack.urls().items():
                print(f"  {name:<28} {url}")
            print(f"  {'work dir':<28} {run.stack.workdir}")
            try:
                while True:
                    time.sleep(3600)
            except _Interrupted:
                pass
        return 0 if report.passed else 1
    finally:
        # a second Ctrl-C must not interrupt the clean-up: ignore both signals until everything is stopped
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            run.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
