"""``receiver replay PAYLOAD.json``: show, with no side effects, what each alert of a notification would get.

Per alert: fingerprint, alertname, status, runbook id, incident key, severity and any severity expression
errors. No database is opened. Exit 1 when the payload is invalid (every problem listed), 2 for bad runbooks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from receiver.errors import PayloadError, RunbookError
from receiver.payload import decode_json, parse_notification

__all__ = ["handle", "register", "replay"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="show runbook, incident key and severity for a payload", description=__doc__
    )
    parser.add_argument("payload", type=Path, help="an Alertmanager v4 webhook body (JSON file; - for stdin)")
    parser.add_argument("--runbooks", type=Path, default=Path("runbooks"), help="runbook directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=handle)


def replay(body: bytes, runbooks_dir: Path) -> list[dict[str, Any]]:
    """The decision for every alert of ``body``; raises PayloadError / RunbookError."""
    from receiver.runbooks import SeverityContext, load_runbooks

    notification = parse_notification(decode_json(body))
    runbooks = load_runbooks(runbooks_dir)
    firing_per_key: dict[str, int] = {}
    rows = []
    for alert in notification.alerts:
        runbook = runbooks.match(alert.labels)
        key = runbook.incident_key(alert.labels)
        if alert.status == "firing":
            firing_per_key[key] = firing_per_key.get(key, 0) + 1
        decision = runbook.decide_severity_with_trace(
            SeverityContext.from_alert(
                alert.labels, alert.annotations, firing_count=max(1, firing_per_key.get(key, 0))
            )
        )
        rows.append(
            {
                "fingerprint": alert.fingerprint,
                "alertname": alert.alertname,
                "status": alert.status,
                "runbook": runbook.id,
                "incident_key": key,
                "severity": decision.level,
                "errors": [str(e) for e in decision.errors],
            }
        )
    return rows


def handle(args: argparse.Namespace) -> int:
    try:
        body = sys.stdin.buffer.read() if str(args.payload) == "-" else args.payload.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.payload}: {exc.strerror}")
        return 2
    try:
        rows = replay(body, args.runbooks)
    except PayloadError as exc:
        if args.json:
            print(json.dumps({"error": exc.message, "problems": exc.problems}, indent=2))
        else:
            print(f"error: {exc.message}")
            for problem in exc.problems:
                print(f"  {problem}")
        return 1
    except RunbookError as exc:
        print(f"error: {exc.message}")
        for problem in exc.problems:
            print(f"  {problem}")
        return 2
    if args.json:
        print(json.dumps({"alerts": rows}, indent=2, ensure_ascii=False))
        return 0
    header = ("FINGERPRINT", "ALERTNAME", "STATUS", "RUNBOOK", "INCIDENT KEY", "SEVERITY")
    table = [
        header,
        *[
            (r["fingerprint"], r["alertname"], r["status"], r["runbook"], r["incident_key"], r["severity"])
            for r in rows
        ],
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for line in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    for item in rows:
        for error in item["errors"]:
            print(f"{item['fingerprint']}: {error}")
    return 0
