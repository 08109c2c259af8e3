"""``receiver serve``: run the webhook receiver on waitress (a production WSGI server).

Settings: defaults < ``--config`` YAML < ``RECEIVER_*`` environment < these flags. Stops on SIGTERM/SIGINT:
the HTTP server closes, the worker finishes its current step, the store closes, all within
``shutdown_grace_seconds``. Work still in flight then (an action's HTTP call to a slow endpoint, an evidence
query to a hung Prometheus) is abandoned as in a crash: its lease lapses, and another replica, or this one
restarted, applies the restart rule to it. A stop never hangs on someone else's endpoint.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from receiver.config import Settings, load_settings, resolve_credentials
from receiver.errors import ReceiverError
from receiver.front import FrontLimits, create_front, webhook_gate
from receiver.logging import configure_logging

__all__ = ["handle", "register", "settings_from_args"]

log = logging.getLogger("receiver.serve")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the Alertmanager webhook receiver", description=__doc__)
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 9099)")
    parser.add_argument("--data-dir", type=Path, help="directory of receiver.db (created if missing)")
    parser.add_argument(
        "--database-url",
        help="postgresql://user@host:port/db to share the state with other replicas (else SQLite in "
        "--data-dir; also $RECEIVER_DATABASE_URL; the password from database_password_file or $PGPASSWORD)",
    )
    parser.add_argument(
        "--runbooks", type=Path, dest="runbooks_dir", help="runbook directory (default runbooks/)"
    )
    parser.add_argument(
        "--webhook-token-file",
        type=Path,
        help="bearer token for Alertmanager (else env RECEIVER_WEBHOOK_TOKEN or generated)",
    )
    parser.add_argument(
        "--admin-token-file",
        type=Path,
        help="bearer token for the read API (else env RECEIVER_ADMIN_TOKEN, else generated)",
    )
    parser.add_argument("--config", type=Path, help="YAML file of settings")
    parser.add_argument(
        "--registry-url",
        help="MLflow Model Registry, mlflow+http(s)://host:port "
        "(token: --registry-token-file or env MLFLOW_TRACKING_TOKEN)",
    )
    parser.add_argument("--registry-token-file", type=Path, help="file holding the MLflow bearer token")
    parser.add_argument("--threads", type=int, help="waitress request threads (default 64)")
    parser.add_argument(
        "--no-worker",
        dest="run_worker",
        action="store_false",
        default=None,
        help="answer HTTP only (run_worker: false); replicas that do run the worker, scheduler and outbox "
        "on the same database do the work (a burst is then answered faster)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.set_defaults(func=handle)


def settings_from_args(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    overrides = {
        name: getattr(args, name, None)
        for name in (
            "host",
            "port",
            "data_dir",
            "database_url",
            "runbooks_dir",
            "webhook_token_file",
            "admin_token_file",
            "threads",
            "run_worker",
            "log_level",
            "registry_url",
            "registry_token_file",
        )
    }
    return load_settings(
        config_file=args.config, env=dict(os.environ) if env is None else env, overrides=overrides
    )


def handle(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        configure_logging(settings.log_level, as_json=settings.log_format == "json")
        settings = resolve_credentials(settings)
        configure_logging(
            settings.log_level,
            [settings.webhook_token, settings.admin_token, settings.webhook_basic_password],
            as_json=settings.log_format == "json",
        )
        from receiver.app import create_app

        app = create_app(settings)
    except ReceiverError as exc:
        print(f"error: {exc.message}")
        for problem in exc.problems:
            print(f"  {problem}")
        return 2
    context = app.extensions["receiver"]
    limits = FrontLimits(
        connection_limit=settings.connection_limit,
        request_deadline=settings.request_deadline,
        max_body_bytes=settings.max_body_bytes,
    )
    server = create_front(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        limits=limits,
        gate=webhook_gate(settings),
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        # waitress's own shutdown path: SystemExit in its loop stops the task threads cleanly
        log.info("signal %d: stopping", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("listening on http://%s:%s (webhook POST /api/v1/alerts)", settings.host, server.effective_port)
    try:
        server.run()
    finally:
        # armed before anything can block: it also covers the interpreter's exit, which joins the
        # executor threads that run actions and evidence queries
        watchdog = threading.Timer(
            settings.shutdown_grace_seconds, _abandon, (settings.shutdown_grace_seconds,)
        )
        watchdog.daemon = True
        watchdog.start()
        server.close()
        context.close()
        log.info("stopped")
    return 0


def _abandon(grace: float) -> None:
    counts: dict[str, int] = {}
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread is not threading.main_thread():
            name = thread.name.rstrip("0123456789").rstrip("-_") or "thread"
            counts[name] = counts.get(name, 0) + 1
    log.warning(
        "still busy %.0fs after the stop signal (threads: %s): exiting; work in flight is left to its lease "
        "and the restart rule, as after a crash",
        grace,
        ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) or "none",
    )
    logging.shutdown()
    os._exit(0)
