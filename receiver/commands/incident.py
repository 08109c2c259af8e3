"""``receiver incident ack|resolve|close|recover|show ID`` and ``approve|deny ID STEP``: human control
through the admin API.

``approve``/``deny`` decide the approval gate on step ``STEP`` (its step id, or the approval's number);
the first decision wins, a later one fails naming who decided first. ``--note`` is the reason.

The running receiver owns timers, actions and the outbox, so these commands call its admin API
(``--url``, default ``$RECEIVER_URL`` or http://127.0.0.1:9099) with the admin token from
``--admin-token-file`` or ``$RECEIVER_ADMIN_TOKEN``. The token is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

__all__ = ["admin_request", "register"]

DEFAULT_URL = "http://127.0.0.1:9099"


def _token(args: argparse.Namespace) -> str:
    if args.admin_token_file:
        try:
            return Path(args.admin_token_file).read_text().strip()
        except OSError as exc:
            raise SystemExit(
                f"receiver: cannot read admin token file {args.admin_token_file}: {exc.strerror}"
            ) from None
    token = os.environ.get("RECEIVER_ADMIN_TOKEN", "")
    if not token:
        raise SystemExit("receiver: no admin token: pass --admin-token-file or set RECEIVER_ADMIN_TOKEN")
    return token


def admin_request(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    url = (args.url or os.environ.get("RECEIVER_URL") or DEFAULT_URL).rstrip("/") + path
    try:
        response = requests.request(
            method, url, json=body, headers={"Authorization": f"Bearer {_token(args)}"}, timeout=args.timeout
        )
    except requests.RequestException as exc:
        raise SystemExit(f"receiver: cannot reach {url}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            detail = f"{error['type']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            detail = response.text[:300]
        raise SystemExit(f"receiver: {method} {path} failed ({response.status_code}): {detail}")
    if response.headers.get("Content-Type", "").startswith("application/json"):
        return response.json()
    return response.text


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"receiver base URL (default $RECEIVER_URL or {DEFAULT_URL})")
    parser.add_argument("--admin-token-file", help="file holding the admin token (or $RECEIVER_ADMIN_TOKEN)")
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds (default 30)")


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"actor": args.actor}
    if args.note:
        body["note"] = args.note
    if args.verb == "show":
        result = admin_request(args, "GET", f"/api/v1/incidents/{args.id}")
    elif args.verb in ("approve", "deny"):
        if not args.step:
            raise SystemExit(f"receiver: incident {args.verb} needs the gated step: {args.verb} ID STEP")
        decision = {"decision": args.verb, "actor": args.actor, "reason": args.note}
        where = f"{args.step}" if args.step.isdigit() else f"step/{quote(args.step, safe='')}"
        result = admin_request(args, "POST", f"/api/v1/incidents/{args.id}/approvals/{where}", decision)
    else:
        if args.verb == "recover" and args.dry_run:
            body["dry_run"] = True
        result = admin_request(args, "POST", f"/api/v1/incidents/{args.id}/{args.verb}", body)
    print(json.dumps(result, indent=2, sort_keys=True) if not isinstance(result, str) else result)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "incident",
        help="acknowledge, resolve, close or recover an incident, or decide an approval (admin API)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("verb", choices=["ack", "resolve", "close", "recover", "show", "approve", "deny"])
    parser.add_argument("id", type=int, help="incident id")
    parser.add_argument("step", nargs="?", help="approve/deny: the gated step's id (or the approval number)")
    parser.add_argument(
        "--actor",
        default=getpass.getuser() if sys.platform != "win32" else "operator",
        help="who is acting (recorded on the timeline; default: your user name)",
    )
    parser.add_argument("--note", default="", help="a note for the timeline (approve/deny: the reason)")
    parser.add_argument("--dry-run", action="store_true", help="recover: show what would run, change nothing")
    add_connection_options(parser)
    parser.set_defaults(func=_run)
