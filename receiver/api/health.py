"""``/healthz`` (process up), ``/readyz`` (database reachable and writable with room for the next
notification, migrations current, runbooks loaded, worker alive), ``/metrics``.

Why the room check (SQLite only): on a full disk SQLite can still rewrite pages in place (the probe write
succeeded) while every new notification, which must grow the files, fails with 503. So readiness also reserves
space for two notifications of the largest accepted size in the data directory (``posix_fallocate``
allocates without writing data, and is refused by a full disk or a file size limit), then frees it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from receiver.app import get_context
from receiver.errors import StoreError, error_body

__all__ = ["bp"]

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    ctx = get_context()
    problems: list[str] = []
    try:
        ctx.store.check_writable()
        ctx.store.check_schema()
    except StoreError as exc:
        problems.append(f"store: {exc.message}")
    # the room check is about SQLite's files; PostgreSQL's disk is the database server's to watch
    room = (
        _room_for(ctx.settings.data_dir, 2 * ctx.settings.max_body_bytes)
        if ctx.store.dialect == "sqlite"
        else None
    )
    if room is not None:
        problems.append(f"store: no room for new notifications in {ctx.settings.data_dir}: {room}")
    if len(ctx.runbooks) == 0:
        problems.append(f"runbooks: none loaded from {ctx.settings.runbooks_dir}")
    if ctx.worker is not None and not ctx.worker.alive:
        problems.append("worker: not running")
    if problems:
        return jsonify(error_body(503, "NotReady", "receiver is not ready", problems)), 503
    return jsonify({"status": "ready", "runbooks": len(ctx.runbooks)})


def _room_for(directory: Path, size: int) -> str | None:
    """None when ``size`` bytes can be allocated in ``directory`` now, else why not."""
    probe = directory / f".readyz-room-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        return f"{exc.strerror or type(exc).__name__} while reserving {size} bytes"
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


@bp.get("/metrics")
def metrics() -> Response:
    return Response(get_context().metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)
