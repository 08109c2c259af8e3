"""``receiver lint [DIR]``: validate every runbook and print each problem as ``file:line: field: message``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from receiver.errors import ConfigError
from receiver.runbooks import lint_runbooks, load_runbooks

__all__ = ["handle", "register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="validate runbooks (schema, matchers, expressions, actions)",
        description="Validate every runbook; print each problem as file:line: field: message.",
    )
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("runbooks"),
        help="directory of runbook YAML files (default: runbooks/)",
    )
    parser.add_argument(
        "--schema", type=Path, default=None, help="runbook JSON Schema (default: the shipped one)"
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        problems = lint_runbooks(args.directory, schema_path=args.schema)
    except ConfigError as exc:
        print(f"error: {exc.message}")
        return 2
    for problem in problems:
        print(problem)
    if problems:
        files = len({p.file for p in problems})
        print(f"{len(problems)} problem(s) in {files} file(s)")
        return 1
    count = len(load_runbooks(args.directory, schema_path=args.schema))
    print(f"{count} runbooks OK")
    return 0
