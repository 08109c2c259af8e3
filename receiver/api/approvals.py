"""Approval gates over the admin API (admin token): list an incident's approvals, decide one.

``GET /api/v1/incidents/<id>/approvals``; ``POST /api/v1/incidents/<id>/approvals/<approval_id>`` or
``POST /api/v1/incidents/<id>/approvals/step/<step_id>`` with ``{"decision": "approve"|"deny", "actor",
"reason"}``. The first decision wins: a later one gets 409 naming who decided first.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from receiver.api.incidents import MAX_ID, admin_required
from receiver.app import get_context
from receiver.errors import AlreadyDecided, FeatureDisabled, NotFound, PayloadError
from receiver.responder import Responder
from receiver.store.base import Approval

__all__ = ["bp"]

bp = Blueprint("approvals", __name__)


def _responder() -> Responder:
    runtime = get_context().response
    if runtime is None:
        raise FeatureDisabled("responses are disabled on this receiver (no responder configured)")
    return runtime.responder


def _decision_body() -> tuple[str, str, str]:
    body = request.get_json(silent=True) if request.data else None
    if not isinstance(body, dict):
        raise PayloadError('expected a JSON object body such as {"decision": "approve", "actor": "alice"}')
    for key in ("decision", "actor", "reason"):
        if key in body and not isinstance(body[key], str):
            raise PayloadError(f"{key}: expected a string")
    decision = body.get("decision")
    if decision not in ("approve", "deny"):
        raise PayloadError(f"decision: expected approve or deny, got {decision!r}")
    return str(decision), str(body.get("actor") or "admin-api")[:200], str(body.get("reason") or "")[:1000]


def _decide(incident_id: int, approval: Approval) -> Any:
    decision, actor, reason = _decision_body()
    won = _responder().decide(incident_id, approval.id, decision, actor, reason)
    now = get_context().store.approvals.get(approval.id)
    if not won:
        raise AlreadyDecided(
            f"approval {approval.id} ({approval.step_id}) was already {now.state} by {now.decided_by}"
        )
    return jsonify({"incident": incident_id, "won": True, "approval": now.to_json()})


@bp.get(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/approvals")
@admin_required
def list_approvals(incident_id: int) -> Any:
    store = get_context().store
    store.get_incident(incident_id)  # 404 for an unknown incident
    return jsonify({"approvals": [a.to_json() for a in store.approvals.for_incident(incident_id)]})


@bp.post(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/approvals/<int(max={MAX_ID}):approval_id>")
@admin_required
def decide_by_id(incident_id: int, approval_id: int) -> Any:
    approval = get_context().store.approvals.get(approval_id)
    if approval.incident_id != incident_id:
        raise NotFound(f"approval {approval_id} does not belong to incident {incident_id}")
    return _decide(incident_id, approval)


@bp.post(f"/api/v1/incidents/<int(max={MAX_ID}):incident_id>/approvals/step/<step_id>")
@admin_required
def decide_by_step(incident_id: int, step_id: str) -> Any:
    found = [a for a in get_context().store.approvals.for_incident(incident_id) if a.step_id == step_id]
    if not found:
        raise NotFound(f"incident {incident_id} has no approval gate on step {step_id!r}")
    pending = [a for a in found if a.state == "pending"]
    return _decide(incident_id, (pending or found)[0])
