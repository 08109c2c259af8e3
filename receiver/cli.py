"""The ``receiver`` command line. Each subcommand lives in ``receiver/commands/<name>.py``.

A command module exposes ``register(subparsers) -> None``, which adds its parser and sets
``func=handler`` where ``handler(args) -> int`` returns the exit status. Modules are imported only when
the CLI runs, never at package import.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: Subcommand modules under ``receiver.commands``, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "db",
    "lint",
    "replay",
    "incident",
    "review",
    "backtest",
    "drill",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="receiver",
        description="Incident runbook engine for ML models: Alertmanager webhook -> runbooks -> actions.",
    )
    from receiver.version import version

    parser.add_argument("--version", action="version", version=f"receiver {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"receiver.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
