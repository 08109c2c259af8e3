"""``receiver review ID``: the post-incident review as Markdown.

Reads the incident straight from the SQLite store in ``--data-dir`` (works with the receiver stopped), or
from a running receiver's admin API with ``--url``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from receiver.commands.incident import add_connection_options, admin_request

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    if args.url:
        sys.stdout.write(admin_request(args, "GET", f"/api/v1/incidents/{args.id}/review"))
        return 0
    from receiver.errors import NotFound
    from receiver.review import render_review
    from receiver.store import open_store

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"receiver: data dir {data_dir} does not exist", file=sys.stderr)
        return 2
    store = open_store(data_dir)
    try:
        archived = store.retention.archived_review(args.id)  # pruned by retention: the stored review
        text = archived.markdown if archived is not None else render_review(store.get_incident(args.id))
    except NotFound as exc:
        print(f"receiver: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    sys.stdout.write(text)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "review", help="print the post-incident review (Markdown)", description=__doc__
    )
    parser.add_argument("id", type=int, help="incident id")
    parser.add_argument(
        "--data-dir", default="data", help="receiver data dir holding the SQLite file (default data)"
    )
    add_connection_options(parser)
    parser.set_defaults(func=_run)
