"""Read API (admin token): ``GET /api/v1/incidents``, ``/api/v1/incidents/<id>``, ``/api/v1/rejected``.

Lists are newest first with cursor pagination: ``next`` is the URL of the following page (or null).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Blueprint, jsonify, request

from receiver.api.auth import check_bearer
from receiver.app import get_context
from receiver.errors import PayloadError, error_body

__all__ = ["bp"]

bp = Blueprint("incidents", __name__)
F = TypeVar("F", bound=Callable[..., Any])

#: the query parameters' limits (also published in the OpenAPI document)
STATES = ("open", "contained", "resolved", "closed")
MAX_LIMIT = 500
MAX_CURSOR = 2**62
MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id in a path is a 404, not an overflow


def admin_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not check_bearer(request, get_context().settings.admin_token):
            return (
                jsonify(error_body(401, "Unauthorized", "admin token required")),
                401,
                {"WWW-Authenticate": 'Bearer realm="receiver-admin"'},
            )
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _arg(name: str) -> str | None:
    """A query parameter given at most once (a repeated one is ambiguous: refused)."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise PayloadError(f"query parameter {name!r}: given {len(values)} times; give it once")
    return values[0] if values else None


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = _arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PayloadError(f"query parameter {name!r}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise PayloadError(f"query parameter {name!r}: expected {low}..{high}, got {value}")
    return value


def _next_link(items: list[Any], limit: int) -> str | None:
    if len(items) < limit:
        return None
    params = {k: v for k, v in request.args.items() if k != "cursor"}
    params["cursor"] = str(items[-1].id)
    return f"{request.path}?{urlencode(params)}"


@bp.get("/api/v1/incidents")
@admin_required
def list_incidents() -> Any:
    state = _arg("state")
    if state is not None and state not in STATES:
        raise PayloadError(f"query parameter 'state': expected one of {', '.join(STATES)}, got {state!r}")
    limit = _int_arg("limit", 50, 1, MAX_LIMIT) or 50
    cursor = _int_arg("cursor", None, 1, MAX_CURSOR)
    items = get_context().store.list_incidents(
        state=state,
        model=_arg("model") or None,
        runbook=_arg("runbook") or None,
        limit=limit,
        before_id=cursor,
    )
    return jsonify({"incidents": [asdict(i) for i in items], "next": _next_link(items, limit)})


@bp.get(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>")
@admin_required
def get_incident(incident_id: int) -> Any:
    detail = get_context().store.get_incident(incident_id)
    return jsonify(
        {
            "incident": asdict(detail.incident),
            "alerts": [asdict(a) for a in detail.alerts],
            "timeline": [asdict(t) for t in detail.timeline],
        }
    )


@bp.get("/api/v1/rejected")
@admin_required
def list_rejected() -> Any:
    limit = _int_arg("limit", 50, 1, MAX_LIMIT) or 50
    cursor = _int_arg("cursor", None, 1, MAX_CURSOR)
    items = get_context().store.list_rejected(limit=limit, before_id=cursor)
    rows = []
    for item in items:
        row = asdict(item)
        row["body"] = item.body.decode("utf-8", errors="replace")
        row["body_base64"] = base64.b64encode(item.body).decode("ascii")
        rows.append(row)
    return jsonify({"rejected": rows, "next": _next_link(items, limit)})
