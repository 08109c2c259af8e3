"""``POST /api/v1/alerts``: authenticate, bound, validate, commit the raw body, answer. Nothing else.

401 (with ``WWW-Authenticate``) for missing/wrong credentials; 415 non-JSON content type; 413 too large
(``Content-Length`` or bytes actually read); 400 invalid payload, listing every problem; 503 when the store
cannot commit (Alertmanager retries). 400/413/415 bodies are kept (truncated) for ``GET /api/v1/rejected``.

The handler, :func:`receive`, needs only a werkzeug request, not Flask's request context: this is the one
route Alertmanager floods, and under a flood the context (URL adapter, session, signals, teardown) cost a
quarter of the process's GIL time per request (``bench/webhook.py``). So :class:`WebhookFastPath` answers
``POST /api/v1/alerts`` in front of Flask; the blueprint's view calls the same :func:`receive`, for the URL
map, the OpenAPI document and anything that dispatches through Flask.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Blueprint, request
from werkzeug.wrappers import Request, Response

from receiver.api.auth import check_basic, check_bearer
from receiver.app import ReceiverContext, get_context
from receiver.errors import PayloadError, StoreUnavailable, error_body
from receiver.front import FIRST_BYTE_AT, WEBHOOK_PATH
from receiver.payload import decode_json, parse_notification, quick_accept, safe_text

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["CHALLENGE", "WebhookFastPath", "bp", "receive"]

bp = Blueprint("webhook", __name__)
log = logging.getLogger("receiver.webhook")

CHALLENGE = 'Bearer realm="receiver", Basic realm="receiver"'


def _error(
    status: int,
    error_type: str,
    message: str,
    problems: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = json.dumps(
        error_body(status, error_type, message, problems), sort_keys=True, separators=(",", ":")
    )
    return Response(body + "\n", status, headers=headers, mimetype="application/json")  # as jsonify


def _reject(
    ctx: ReceiverContext,
    request: Request,
    status: int,
    outcome: str,
    error_type: str,
    message: str,
    problems: list[str],
    body: bytes,
    body_size: int | None = None,
) -> Response:
    ctx.metrics.count(outcome)
    # problems quote the sender's text; a lone surrogate there could be neither stored nor logged
    message, problems = safe_text(message), [safe_text(p) for p in problems]
    try:
        rejected_id = ctx.store.record_rejected(
            status=status,
            reason=message,
            problems=problems,
            content_type=request.content_type,
            body=body,
            body_size=body_size,
        )
        log.warning(
            "rejected notification (%d %s) kept as rejected #%d: %s",
            status,
            error_type,
            rejected_id,
            "; ".join(problems[:5]) or message,
        )
    except StoreUnavailable as exc:
        log.error("rejected notification (%d) could not be kept: %s", status, exc.message)
    return _error(status, error_type, message, problems)


def _json_content_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


@bp.post(WEBHOOK_PATH)
def receive_alerts() -> Response:
    return receive(get_context(), request)


class WebhookFastPath:
    """WSGI middleware: ``POST /api/v1/alerts`` straight to :func:`receive`, everything else to ``app``.

    An unexpected error is logged and answered 500 with the receiver's JSON error shape, as the Flask
    app's own handler would.
    """

    def __init__(self, app: WSGIApplication, context: ReceiverContext) -> None:
        self.app, self.context = app, context

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != WEBHOOK_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            response = receive(self.context, Request(environ))
        except Exception:
            log.exception("unhandled error")
            response = _error(500, "InternalError", "internal error; see the receiver log")
        return response(environ, start_response)


def receive(ctx: ReceiverContext, request: Request) -> Response:
    """Answer one webhook request (see the module docstring for the statuses)."""
    started = request.environ.get(FIRST_BYTE_AT) or time.time()
    try:
        if ctx.worker is None:
            return _receive(ctx, request)
        foreground = ctx.worker.foreground  # the worker waits for a gap: requests go first
        foreground.enter()
        try:
            return _receive(ctx, request)
        finally:
            foreground.leave()
    finally:
        ctx.metrics.webhook_answer.observe(max(0.0, time.time() - started))


def _receive(ctx: ReceiverContext, request: Request) -> Response:
    settings = ctx.settings
    if not (
        check_bearer(request, settings.webhook_token)
        or check_basic(request, settings.webhook_basic_user, settings.webhook_basic_password)
    ):
        ctx.metrics.count("unauthorized")
        log.warning("webhook request refused: missing or wrong credentials from %s", request.remote_addr)
        return _error(
            401, "Unauthorized", "missing or wrong credentials", headers={"WWW-Authenticate": CHALLENGE}
        )

    limit = settings.max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        head = request.stream.read(min(declared, settings.rejected_body_cap))
        return _reject(
            ctx,
            request,
            413,
            "too_large",
            "PayloadTooLarge",
            f"body of {declared} bytes exceeds the limit of {limit} bytes",
            [f"$: Content-Length {declared} > max_body_bytes {limit}"],
            head,
            body_size=declared,
        )
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return _reject(
            ctx,
            request,
            413,
            "too_large",
            "PayloadTooLarge",
            f"body exceeds the limit of {limit} bytes",
            [f"$: more than max_body_bytes {limit} bytes read"],
            body,
        )
    if not _json_content_type(request.mimetype):
        return _reject(
            ctx,
            request,
            415,
            "unsupported_media_type",
            "UnsupportedMediaType",
            f"expected Content-Type application/json, got {request.content_type or 'none'!r}",
            [f"Content-Type: {request.content_type or 'missing'}"],
            body,
        )
    # the common case costs one json.loads and a structural check; anything it does not vouch for goes
    # through the full validator, which accepts it or names every problem for the 400
    summary = quick_accept(body)
    if summary is None:
        try:
            notification = parse_notification(decode_json(body))
        except PayloadError as exc:
            return _reject(
                ctx,
                request,
                400,
                "invalid",
                "PayloadError",
                exc.message,
                [str(p) for p in exc.problems],
                body,
            )
        summary = notification.group_key, len(notification.alerts)
    group_key, alert_count = summary
    try:
        notification_id = ctx.store.record_notification(body, group_key)
    except StoreUnavailable as exc:
        ctx.metrics.count("unavailable")
        log.error("notification not stored (503, Alertmanager will retry): %s", exc.message)
        return _error(503, "StoreUnavailable", "store cannot commit right now; retry later", [exc.message])
    ctx.metrics.count("accepted")
    if ctx.worker is not None:
        ctx.worker.notify()
    # the same bytes jsonify would produce (sorted keys, trailing newline), without the JSON provider
    return Response(
        b'{"alerts":%d,"id":%d,"status":"accepted"}\n' % (alert_count, notification_id),
        200,
        mimetype="application/json",
    )
