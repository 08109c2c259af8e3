"""``receiver db upgrade|check|prune|outbox|requeue``: the receiver's database, from the command line.

* ``upgrade`` applies pending migrations (once, even with replicas starting at the same time) and says
  which; exit 2 if the database cannot be reached or is newer than this receiver.
* ``check`` exits 0 when the database is reachable and at the schema this receiver expects; otherwise it
  prints one line saying why and exits 1 (reachable, but migrations are pending: run ``upgrade``) or 2
  (unreachable, newer than this receiver, or bad settings). Suits a deployment's pre-start hook.
* ``prune --older-than 90d`` prunes now what the periodic job prunes (see :mod:`receiver.retention`):
  raw bodies of processed notifications and of rejected requests, and closed incidents, keeping each
  incident's summary and review. Without ``--older-than`` it uses the ``retention_days`` setting.
* ``outbox`` lists the status updates not yet delivered (``--failed``: only those a channel refused for
  good), oldest first, with channel, attempts and last error: what the RunbookEngineOutboxStuck and
  RunbookEngineMessagesDropped alerts point at.
* ``requeue ID...`` queues a copy of each failed message at the end of its channel, once the channel is
  fixed; the outbox worker of any replica delivers it. Exit 2 naming the id that does not exist or did not
  fail (nothing is requeued then).

The database is the one ``receiver serve`` would use: settings from ``--config``, ``RECEIVER_*``
environment and these flags (``--database-url postgresql://…``, else SQLite in ``--data-dir``). Errors
are one line; the database password is never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from receiver.config import Settings, load_settings
from receiver.errors import ReceiverError, StoreError, StoreUnavailable

__all__ = ["register"]

EXIT_BEHIND = 1
EXIT_ERROR = 2


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"data_dir": args.data_dir, "database_url": args.database_url}
    return load_settings(config_file=args.config, env=dict(os.environ), overrides=overrides)


def _secrets(args: argparse.Namespace, settings: Settings | None) -> list[str]:
    """Strings that must never reach the terminal: the database password, wherever it came from."""
    found: list[str] = []
    url = settings.database_url if settings is not None else args.database_url
    if url:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    if settings is not None and settings.database_password_file is not None:
        with contextlib.suppress(OSError):
            found.append(Path(settings.database_password_file).read_text().strip())
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    return [s for s in found if s]


def _one_line(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return re.sub(r"\s+", " ", text).strip()


def _fail(message: str, secrets: list[str], status: int = EXIT_ERROR) -> int:
    print(f"receiver db: {_one_line(message, secrets)}", file=sys.stderr)
    return status


def _open(settings: Settings) -> Any:
    from receiver.app import open_settings_store

    return open_settings_store(settings, migrate=False)


@contextlib.contextmanager
def _current_store(settings: Settings) -> Iterator[Any]:
    """The store at the schema this receiver expects (StoreError otherwise), closed on the way out."""
    store = _open(settings)
    try:
        store.check_schema()
        yield store
    finally:
        store.close()


def _sqlite_missing(settings: Settings) -> bool:
    return not settings.database_url and not settings.db_path.exists()


def _upgrade(args: argparse.Namespace, settings: Settings, secrets: list[str]) -> int:
    store = _open(settings)
    try:
        before = store.schema_version()
        applied = store.migrate()
        where = store.description
        version = store.schema_version()
        migrations_dir = store.db.migrations_dir
    finally:
        store.close()
    if not applied:
        print(f"database {where} is current (schema version {version})")
        return 0
    from receiver.store.migrate import discover_migrations

    names = {m.version: f"{m.version:04d}_{m.name}" for m in discover_migrations(migrations_dir)}
    for number in applied:
        print(f"applied {names.get(number, f'{number:04d}')}")
    print(f"database {where} upgraded from schema version {before} to {version}")
    return 0


def _check(args: argparse.Namespace, settings: Settings, secrets: list[str]) -> int:
    if _sqlite_missing(settings):
        return _fail(
            f"no database at {settings.db_path}; run 'receiver db upgrade' (or start the receiver)",
            secrets,
            EXIT_BEHIND,
        )
    store = _open(settings)
    try:
        current, newest = store.schema_version(), store.db.newest_migration()
        where = store.description
        if current < newest:
            return _fail(
                f"database {where} is at schema version {current}, this receiver expects {newest}; "
                "run 'receiver db upgrade'",
                secrets,
                EXIT_BEHIND,
            )
        if current > newest:
            return _fail(
                f"database {where} has schema version {current}, newer than this receiver knows "
                f"({newest}); upgrade the receiver",
                secrets,
            )
        store.check_writable()
    finally:
        store.close()
    print(f"database {where} is reachable and current (schema version {current})")
    return 0


def _prune(args: argparse.Namespace, settings: Settings, secrets: list[str]) -> int:
    from receiver.durations import parse_prometheus_duration
    from receiver.retention import Retention, check_age
    from receiver.store.sql import utc_stamp

    if args.older_than is not None:
        try:
            age = check_age(parse_prometheus_duration(args.older_than))
        except ValueError as exc:
            return _fail(f"--older-than: {exc}", secrets)
        except ReceiverError as exc:
            return _fail(f"--older-than {args.older_than}: {exc.message}", secrets)
        shown = args.older_than
    elif not settings.retention_days:
        print("nothing pruned: retention_days is 0 (keep everything); pass --older-than to prune anyway")
        return 0
    else:
        try:
            age = check_age(settings.retention_days * 86400.0)
        except ReceiverError as exc:
            return _fail(f"setting 'retention_days': {exc.message}", secrets)
        shown = f"{settings.retention_days:g}d"
    if _sqlite_missing(settings):
        return _fail(f"no database at {settings.db_path}: nothing to prune", secrets)
    with _current_store(settings) as store:
        retention = Retention(store, age)
        cutoff = utc_stamp(retention.clock() - age)
        report = retention.prune()
        where = store.description
    print(f"pruned from {where}, older than {shown} (before {cutoff}): {report.summary()}")
    return 0


def _outbox(args: argparse.Namespace, settings: Settings, secrets: list[str]) -> int:
    from receiver.store.sql import utc_stamp

    if _sqlite_missing(settings):
        return _fail(f"no database at {settings.db_path}: nothing queued", secrets)
    with _current_store(settings) as store:
        rows = store.outbox.select(status="failed")
        if not args.failed:
            rows += store.outbox.select(status="pending")
    if not rows:
        print("nothing undelivered" if not args.failed else "no failed messages")
        return 0
    for m in sorted(rows, key=lambda m: (m.created_at, m.id)):
        status = "" if m.last_status is None else f" HTTP {m.last_status}"
        error = _one_line(m.last_error or "", secrets)[:200]
        print(
            f"{m.id}\t{m.status}\tchannel {m.channel}\tincident {m.incident_id}\tqueued "
            f"{utc_stamp(m.created_at)[:19]}Z\tattempts {m.attempts}{status}"
            + (f"\t{error}" if error else "")
        )
    return 0


def _requeue(args: argparse.Namespace, settings: Settings, secrets: list[str]) -> int:
    if _sqlite_missing(settings):
        return _fail(f"no database at {settings.db_path}", secrets)
    with _current_store(settings) as store:
        by_id = {m.id: m for m in store.outbox.select(status="failed")}
        wrong = [i for i in args.ids if i not in by_id]
        if wrong:
            return _fail(
                f"outbox message {wrong[0]} is not a failed message (see 'receiver db outbox --failed'); "
                "nothing requeued",
                secrets,
            )
        now = time.time()
        copies = [(i, store.outbox.requeue(i, now)[1]) for i in dict.fromkeys(args.ids)]
    for old, new in copies:
        print(f"requeued {old} as {new} (channel {by_id[old].channel})")
    return 0


_ACTIONS = {"upgrade": _upgrade, "check": _check, "prune": _prune, "outbox": _outbox, "requeue": _requeue}


def _run(args: argparse.Namespace) -> int:
    # the driver's pool logs each failed connection attempt; this command says it once, in one line
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    settings: Settings | None = None
    try:
        settings = _settings(args)
        return _ACTIONS[args.action](args, settings, _secrets(args, settings))
    except (StoreUnavailable, StoreError, ReceiverError) as exc:
        secrets = _secrets(args, settings)
        extra = [p for p in exc.problems if p not in exc.message]
        return _fail(exc.message + (": " + "; ".join(extra) if extra else ""), secrets)
    except OSError as exc:
        return _fail(f"{type(exc).__name__}: {exc}", _secrets(args, settings))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file of settings (as for 'receiver serve')")
    parser.add_argument("--data-dir", type=Path, help="directory of the SQLite receiver.db (default data)")
    parser.add_argument(
        "--database-url",
        help="postgresql://user@host:port/db (also $RECEIVER_DATABASE_URL; the password from "
        "database_password_file or $PGPASSWORD); else SQLite in --data-dir",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "db",
        help="upgrade, check or prune the receiver's database; list or requeue undelivered messages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    upgrade = actions.add_parser("upgrade", help="apply pending migrations")
    check = actions.add_parser("check", help="exit 0 if the database is reachable and current")
    prune = actions.add_parser("prune", help="prune old bodies and closed incidents, keeping reviews")
    prune.add_argument(
        "--older-than",
        metavar="DURATION",
        help="Prometheus duration such as 90d or 12w (default: the retention_days setting; at least 1d)",
    )
    outbox = actions.add_parser("outbox", help="list status updates not yet delivered, oldest first")
    outbox.add_argument("--failed", action="store_true", help="only messages a channel refused for good")
    requeue = actions.add_parser("requeue", help="queue failed messages again (after fixing the channel)")
    requeue.add_argument("ids", nargs="+", type=int, metavar="ID", help="outbox message id")
    for sub in (upgrade, check, prune, outbox, requeue):
        _common(sub)
    parser.set_defaults(func=_run)
