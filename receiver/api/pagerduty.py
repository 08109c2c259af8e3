"""``POST /pagerduty/webhook``: PagerDuty v3 webhooks (incident.acknowledged, incident.resolved) in.

Enabled by ``pagerduty_webhook_secret_file`` (the webhook subscription's secret, re-read per request so a
rotation needs no restart). ``X-PagerDuty-Signature`` must carry a matching ``v1=`` HMAC-SHA256 of the raw
body (401 otherwise). The event is recorded under its id before the answer, so a second delivery of the
same event is answered 200 and not acted on again; the inbound worker (:mod:`receiver.inbound`) then
acknowledges or resolves the incident whose key is the page's ``incident_key``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, request

from receiver.app import get_context
from receiver.config import Secret
from receiver.errors import ConfigError, NotFound, PayloadError, SignatureError, error_body
from receiver.signatures import verify_pagerduty

__all__ = ["HANDLED_EVENTS", "bp"]

bp = Blueprint("pagerduty", __name__)

HANDLED_EVENTS = ("incident.acknowledged", "incident.resolved")
_MAX_BODY = 256 * 1024


def _secret() -> Secret:
    path = get_context().settings.pagerduty_webhook_secret_file
    if path is None:
        raise NotFound("PagerDuty webhooks are not enabled (set pagerduty_webhook_secret_file)")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read pagerduty_webhook_secret_file: {exc.strerror}") from None
    if not value:
        raise ConfigError("pagerduty_webhook_secret_file is empty")
    return Secret(value)


@bp.post("/pagerduty/webhook")
def webhook() -> Any:
    context = get_context()
    secret = _secret()
    if context.response is None or context.response.inbound is None:
        raise ConfigError("responses are disabled on this receiver (no responder configured)")
    if (request.content_length or 0) > _MAX_BODY:
        return jsonify(error_body(413, "PayloadTooLarge", f"body over {_MAX_BODY} bytes")), 413
    body = request.get_data(cache=False)
    try:
        verify_pagerduty(secret, body, request.headers.get("X-PagerDuty-Signature"))
    except SignatureError as exc:
        return jsonify(error_body(401, "SignatureError", exc.message)), 401
    try:
        event = json.loads(body)["event"]
        event_id, event_type = str(event["id"]), str(event["event_type"])
    except (ValueError, KeyError, TypeError):
        raise PayloadError('expected a PagerDuty v3 webhook: {"event": {"id", "event_type", ...}}') from None
    if event_type not in HANDLED_EVENTS:
        return jsonify({"accepted": False, "ignored": event_type})
    if context.store.inbound.record("pagerduty", event_id, event) is None:
        return jsonify({"accepted": True, "duplicate": True})
    context.response.inbound.kick()
    return jsonify({"accepted": True, "duplicate": False})
