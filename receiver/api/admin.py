"""Human control (admin token): acknowledge, resolve, close, recover an incident; its review as Markdown.

``POST /api/v1/incidents/<id>/ack|resolve|close|recover`` take an optional JSON body ``{"actor", "note"}``
(``recover`` also ``{"dry_run": true}``); ``GET /api/v1/incidents/<id>/review`` returns Markdown
(for an incident pruned by retention, the review stored when its timeline was deleted).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from receiver.api.incidents import MAX_ID, admin_required
from receiver.api.schemas import ACK_BODY, RECOVER_BODY, validate_body
from receiver.app import get_context
from receiver.errors import FeatureDisabled, PayloadError
from receiver.responder import Responder
from receiver.review import render_review

__all__ = ["bp"]

bp = Blueprint("admin", __name__)


def _responder() -> Responder:
    runtime = get_context().response
    if runtime is None:
        raise FeatureDisabled("responses are disabled on this receiver (no responder configured)")
    return runtime.responder


def _body(schema: dict[str, Any] = ACK_BODY) -> dict[str, Any]:
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise PayloadError('expected a JSON object body such as {"actor": "alice", "note": "..."}')
    validate_body(schema, body)
    return body


def _actor(body: dict[str, Any]) -> str:
    return str(body.get("actor") or "admin-api")[:200]


@bp.post(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/ack")
@admin_required
def acknowledge(incident_id: int) -> Any:
    body = _body()
    changed = _responder().acknowledge(incident_id, _actor(body), str(body.get("note", "")))
    return jsonify({"incident": incident_id, "acknowledged": True, "changed": changed})


@bp.post(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/resolve")
@admin_required
def resolve(incident_id: int) -> Any:
    body = _body()
    changed = _responder().resolve(incident_id, _actor(body), str(body.get("note", "")))
    return jsonify({"incident": incident_id, "state": "resolved", "changed": changed})


@bp.post(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/close")
@admin_required
def close(incident_id: int) -> Any:
    body = _body()
    changed = _responder().close(incident_id, _actor(body), str(body.get("note", "")))
    return jsonify({"incident": incident_id, "state": "closed", "changed": changed})


@bp.post(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/recover")
@admin_required
def recover(incident_id: int) -> Any:
    body = _body(RECOVER_BODY)
    dry_run = bool(body.get("dry_run", False))
    outcomes = _responder().recover(incident_id, _actor(body), dry_run=dry_run)
    return jsonify(
        {
            "incident": incident_id,
            "steps": [
                {
                    "step": o.key.step_id,
                    "action": o.key.kind,
                    "state": o.state,
                    "summary": o.summary,
                    "error": o.error,
                }
                for o in outcomes
            ],
        }
    )


@bp.get(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/review")
@admin_required
def review(incident_id: int) -> Any:
    store = get_context().store
    archived = store.retention.archived_review(incident_id)  # pruned: its timeline is gone, the review kept
    if archived is not None:
        return Response(archived.markdown, mimetype="text/markdown")
    return Response(render_review(store.get_incident(incident_id)), mimetype="text/markdown")
