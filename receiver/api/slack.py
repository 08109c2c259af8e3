"""``POST /slack/interactions``: button clicks from the Slack app's messages (Acknowledge, Approve, Deny,
Recover).

The request is checked before anything in it is trusted: Slack's v0 signature against each ``slack_app``
channel's signing secret, and a timestamp within five minutes (401 otherwise). The Slack user is mapped to a
role by the channel's users file (unlisted: viewer, who may do nothing). An allowed click is recorded in the
store under its signature (a replay of the same request is refused with 401) and answered at once; the
inbound worker (:mod:`receiver.inbound`) does the work from the record, so the answer never waits on an
action and a crash after the answer loses nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, jsonify, request

from receiver.app import get_context
from receiver.comms.slack_app import SlackAppChannel
from receiver.errors import NotFound, PayloadError, ReceiverError, SignatureError, error_body
from receiver.runbooks.approval import role_allows
from receiver.signatures import verify_slack

__all__ = ["bp"]

bp = Blueprint("slack", __name__)

_MAX_BODY = 64 * 1024
_ACTIONS = ("ack", "approve", "deny", "recover")


def _unauthorized(message: str) -> Any:
    return jsonify(error_body(401, "SignatureError", message)), 401


def _verified_channel(channels: list[SlackAppChannel], body: bytes) -> SlackAppChannel:
    stamp = request.headers.get("X-Slack-Request-Timestamp")
    signature = request.headers.get("X-Slack-Signature")
    error: SignatureError | None = None
    for channel in channels:
        try:
            verify_slack(channel.signing_secret, stamp, body, signature, now=time.time())
            return channel
        except SignatureError as exc:
            error = exc
    assert error is not None
    raise error


def _parse(body: bytes) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """(interaction, action kind or None for a click that is not ours, the button's value)."""
    try:
        payload = json.loads(parse_qs(body.decode("utf-8"))["payload"][0])
        action = payload["actions"][0]
        kind = str(action["action_id"]).split("-", 1)[0]
    except (KeyError, IndexError, TypeError, ValueError, UnicodeDecodeError):
        raise PayloadError("not a Slack block_actions interaction") from None
    if kind not in _ACTIONS:  # e.g. a link button (Incident, Dashboard): Slack only wants the 200
        return payload, None, {}
    try:
        value = json.loads(action.get("value") or "{}")
        int(value["incident"])
        if kind in ("approve", "deny"):
            int(value["approval"])
    except (KeyError, TypeError, ValueError):
        raise PayloadError(f"Slack action {kind!r} without its incident (and approval)") from None
    if not isinstance(payload.get("user"), dict):
        raise PayloadError("Slack interaction without a user")
    return payload, kind, value


def _needed_role(kind: str, value: dict[str, Any]) -> str:
    if kind in ("approve", "deny"):
        approval = get_context().store.approvals.get(int(value["approval"]))
        if approval.incident_id != int(value["incident"]):
            raise NotFound("approval does not belong to this incident")
        return approval.role
    return "responder"


@bp.post("/slack/interactions")
def interactions() -> Any:
    context = get_context()
    runtime = context.response
    channels = (
        []
        if runtime is None
        else [c for c in runtime.responder.channels.values() if isinstance(c, SlackAppChannel)]
    )
    if runtime is None or runtime.inbound is None or not channels:
        raise NotFound("no slack_app channel is configured on this receiver")
    if (request.content_length or 0) > _MAX_BODY:
        return jsonify(error_body(413, "PayloadTooLarge", f"body over {_MAX_BODY} bytes")), 413
    body = request.get_data(cache=False)
    try:
        channel = _verified_channel(channels, body)
    except SignatureError as exc:
        return _unauthorized(exc.message)
    payload, kind, value = _parse(body)
    if kind is None:
        return jsonify({"ok": True})
    user = payload["user"]
    user_id = str(user.get("id", ""))
    role = channel.users.role_of(user_id)
    try:
        needed = _needed_role(kind, value)
    except (ReceiverError, KeyError, ValueError, TypeError):
        return jsonify({"response_type": "ephemeral", "text": "That approval no longer exists."})
    if not role_allows(role, needed):
        text = f"Not allowed: {kind} needs the {needed} role; you are {role}."
        return jsonify({"response_type": "ephemeral", "replace_original": False, "text": text})
    record = {
        "action": kind,
        "incident": int(value["incident"]),
        "approval": value.get("approval"),
        "user_id": user_id,
        "user_name": str(user.get("username") or user.get("name") or user_id)[:100],
        "role": role,
        "channel": channel.name,
    }
    signature = str(request.headers.get("X-Slack-Signature", ""))
    if context.store.inbound.record("slack", signature, record) is None:
        return _unauthorized("replayed request: this signature was seen before")
    runtime.inbound.kick()
    return jsonify(
        {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": f"Received: {kind} on incident {record['incident']}; acting on it.",
        }
    )
