"""Runbook pages for humans: ``GET /runbooks`` lists them, ``GET /runbooks/<name>`` shows one.

Alert annotations link here (``runbook_url``), so on-call engineers reach the runbook from the page or chat
message without a token: runbooks hold no secrets (secrets stay in files outside the YAML). ``<name>`` is a
runbook id, or an ``incident_type`` such as ``drift`` (the runbook that would handle such an alert).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from receiver.app import get_context
from receiver.errors import NotFound

__all__ = ["bp"]

bp = Blueprint("runbooks", __name__)


@bp.get("/runbooks")
def list_runbooks() -> Any:
    runbooks = get_context().runbooks
    return jsonify(
        {
            "runbooks": [
                {
                    "id": rb.id,
                    "title": rb.title,
                    "match": [str(m) for m in rb.matchers],
                    "priority": rb.priority,
                }
                for rb in runbooks.runbooks
            ]
        }
    )


@bp.get("/runbooks/<name>")
def show_runbook(name: str) -> Any:
    runbooks = get_context().runbooks
    try:
        runbook = runbooks.get(name)
    except NotFound:
        runbook = runbooks.match({"incident_type": name})
        if runbook.id == "unmatched":
            raise NotFound(f"no runbook with id or incident_type {name!r}") from None
    text = runbook.source.read_text() if runbook.source is not None and runbook.source.exists() else None
    if text is None:
        return jsonify({"id": runbook.id, "title": runbook.title, "document": runbook.document})
    return Response(text, mimetype="text/plain; charset=utf-8")
