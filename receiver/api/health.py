"""``/healthz`` (process up), ``/readyz`` (database reachable and writable, migrations current, runbooks
loaded, worker alive), ``/metrics``."""

from __future__ import annotations

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
    if len(ctx.runbooks) == 0:
        problems.append(f"runbooks: none loaded from {ctx.settings.runbooks_dir}")
    if ctx.worker is not None and not ctx.worker.alive:
        problems.append("worker: not running")
    if problems:
        return jsonify(error_body(503, "NotReady", "receiver is not ready", problems)), 503
    return jsonify({"status": "ready", "runbooks": len(ctx.runbooks)})


@bp.get("/metrics")
def metrics() -> Response:
    return Response(get_context().metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)
