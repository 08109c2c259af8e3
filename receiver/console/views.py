"""The console's routes (thin): sign-in, incident list, incident page and its buttons, review, runbooks.

The work is elsewhere: :mod:`.signin` (who, CSRF, roles), :mod:`.incident_data` (what a page shows), the
:class:`~receiver.responder.Responder` (what a button does, the same methods the admin API and CLI use, so
every decision lands on the timeline with who made it).
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import Blueprint, Flask, g, redirect, request
from werkzeug.wrappers import Response

from receiver.api.incidents import MAX_ID
from receiver.console import signin
from receiver.console.incident_data import gather
from receiver.console.reviewpage import review_context
from receiver.console.runbookpages import runbook_context
from receiver.console.signin import Console, console, current_viewer, forbidden, require
from receiver.errors import ConfigError, NotFound, ReceiverError

__all__ = ["bp", "init_console"]

bp = Blueprint("console", __name__, static_folder="static", static_url_path="/console-static")

_STATES = ("open", "contained", "resolved", "closed")
_SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "close": "closed", "recover": "recovery run"}


def init_console(app: Flask, settings: Any) -> None:
    """Register the blueprint and the console's parts on ``app`` (called by the app factory)."""
    app.extensions["console"] = Console(settings)
    app.register_blueprint(bp)


def _ctx() -> Any:
    from receiver.app import get_context

    return get_context()


@bp.after_request
def _headers(response: Response) -> Response:
    return signin.add_security_headers(response)


# -- sign-in ----------------------------------------------------------------------------------------------
@bp.get("/login")
def login_form() -> Any:
    nonce = secrets.token_urlsafe(24)
    body = console().render(
        "login.html",
        title="Sign in",
        csrf=nonce,
        next=signin._safe_next(request.args.get("next")),
        has_users=bool(console().settings.console_users_file),
        error=None,
    )
    response = Response(body, mimetype="text/html")
    response.set_cookie(
        signin.LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="Lax", secure=signin.secure_cookies()
    )
    return response


@bp.post("/login")
def login() -> Any:
    expected = request.cookies.get(signin.LOGIN_COOKIE, "")
    given = request.form.get("csrf", "")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        return forbidden("the sign-in form expired or its CSRF token is wrong; reload it and try again")
    target = signin._safe_next(request.form.get("next"))
    token_text = request.form.get("token", "").strip()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    who: tuple[str, str, str] | None = None
    admin = _ctx().settings.admin_token
    if token_text and admin is not None and admin.matches(token_text):
        who = ("admin", "admin", "token")
    elif username and password:
        try:
            user = console().users.check(username, password)
        except ConfigError as exc:
            return console().render("error.html", title="Sign-in unavailable", message=exc.message), 500
        if user is not None:
            who = (user.name, user.role, "password")
    if who is None:
        time.sleep(0.2)  # a little friction for guessing; the hash already costs more
        body = console().render(
            "login.html",
            title="Sign in",
            csrf=given,
            next=target,
            has_users=bool(console().settings.console_users_file),
            error="wrong token, user name or password",
        )
        return body, 401
    token, _viewer = signin.start_session(*who)
    response = redirect(target, code=303)
    signin.set_session_cookie(response, token)
    response.delete_cookie(signin.LOGIN_COOKIE)
    return response


@bp.post("/logout")
@require("viewer")
def logout() -> Any:
    token = request.cookies.get(signin.COOKIE)
    if token:
        _ctx().store.sessions.delete(token)
    response = redirect("/login", code=303)
    response.delete_cookie(signin.COOKIE, path="/")
    return response


# -- incidents --------------------------------------------------------------------------------------------
def _filters() -> dict[str, str]:
    wanted = {name: request.args.get(name, "").strip() for name in ("state", "model", "runbook", "severity")}
    if wanted["state"] not in ("", "live", *_STATES):
        wanted["state"] = ""
    if wanted["severity"] not in ("", *_SEVERITIES):
        wanted["severity"] = ""
    return wanted


@bp.get("/")
@require("viewer")
def incident_list() -> Any:
    filters = _filters()
    store = _ctx().store
    state = filters["state"] if filters["state"] in _STATES else None
    incidents = store.list_incidents(
        state=state, model=filters["model"] or None, runbook=filters["runbook"] or None, limit=200
    )
    if filters["state"] == "live":
        incidents = [i for i in incidents if i.state in ("open", "contained")]
    if filters["severity"]:
        incidents = [i for i in incidents if i.severity == filters["severity"]]
    template = "incident_rows.html" if request.args.get("fragment") else "incidents.html"
    return console().render(
        template,
        title="Incidents",
        incidents=incidents,
        filters=filters,
        states=("live", *_STATES),
        severities=_SEVERITIES,
        runbooks=[rb.id for rb in _ctx().runbooks.runbooks],
        now=time.time(),
    )


def _data(incident_id: int, *, with_charts: bool = True) -> Any:
    ctx = _ctx()
    return gather(
        ctx.store,
        ctx.runbooks,
        incident_id,
        prometheus=console().prometheus,
        pool=console().pool,
        registry_db=ctx.settings.registry_db,
        with_charts=with_charts,
    )


@bp.get(f"/incidents/<int(max={MAX_ID}):incident_id>")
@require("viewer")
def incident_page(incident_id: int) -> Any:
    try:
        data = _data(incident_id)
    except NotFound as exc:
        return console().render("error.html", title="Not found", message=exc.message), 404
    did = request.args.get("did", "")
    return console().render(
        "incident.html",
        title=f"Incident {incident_id}",
        data=data,
        incident=data.detail.incident,
        did=did if did in ACTIONS.values() or did in ("approved", "denied", "unchanged") else "",
        can_act=g.console_viewer.can("responder"),
        now=time.time(),
    )


def _responder() -> Any:
    runtime = _ctx().response
    if runtime is None:
        raise ConfigError("responses are disabled on this receiver (no responder configured)")
    return runtime.responder


def _actor() -> str:
    viewer = current_viewer()
    assert viewer is not None
    return f"{viewer.username} (console)"


def _landed(incident_id: int, did: str) -> Response:
    return redirect(f"/incidents/{incident_id}?did={did.replace(' ', '+')}#timeline", code=303)


@bp.post(f"/incidents/<int(max={MAX_ID}):incident_id>/<action>")
@require("responder")
def act(incident_id: int, action: str) -> Any:
    if action not in ACTIONS:
        return console().render("error.html", title="Not found", message=f"no action {action!r}"), 404
    note = request.form.get("note", "").strip()[:500]
    try:
        _ctx().store.get_incident(incident_id)
        responder = _responder()
        if action == "recover":
            responder.recover(incident_id, _actor())
            changed = True
        else:
            changed = getattr(responder, action)(incident_id, _actor(), note)
    except NotFound as exc:
        return console().render("error.html", title="Not found", message=exc.message), 404
    except ReceiverError as exc:
        return console().render("error.html", title="Not done", message=exc.message), 409
    return _landed(incident_id, ACTIONS[action] if changed else "unchanged")


@bp.post(f"/incidents/<int(max={MAX_ID}):incident_id>/approvals/<int(max={MAX_ID}):approval_id>/<decision>")
@require("viewer")
def decide(incident_id: int, approval_id: int, decision: str) -> Any:
    if decision not in ("approve", "deny"):
        return console().render("error.html", title="Not found", message=f"no decision {decision!r}"), 404
    found = next((a for a in _ctx().store.approvals.for_incident(incident_id) if a.id == approval_id), None)
    if found is None:
        return console().render("error.html", title="Not found", message="no such approval"), 404
    viewer = g.console_viewer
    needed = found.role if found.role in ("viewer", "responder", "admin") else "responder"
    if not viewer.can(needed) or not viewer.can("responder"):
        return forbidden(f"deciding this needs the {needed} role; you are signed in as {viewer.role}")
    reason = request.form.get("reason", "").strip()[:500]
    try:
        won = _responder().decide(incident_id, approval_id, decision, _actor(), reason)
    except ReceiverError as exc:
        return console().render("error.html", title="Not done", message=exc.message), 409
    return _landed(incident_id, ("approved" if decision == "approve" else "denied") if won else "unchanged")


# -- review and runbooks -------------------------------------------------------------------------------------
@bp.get(f"/incidents/<int(max={MAX_ID}):incident_id>/review")
@require("viewer")
def review_page(incident_id: int) -> Any:
    try:
        data = _data(incident_id)
    except NotFound as exc:
        return console().render("error.html", title="Not found", message=exc.message), 404
    values = review_context(data, console().session, _ctx().settings.prometheus_url)
    return console().render("review.html", title=f"Review of incident {incident_id}", data=data, **values)


@bp.get(f"/incidents/<int(max={MAX_ID}):incident_id>/review.md")
@require("viewer")
def review_markdown(incident_id: int) -> Any:
    try:
        data = _data(incident_id)
    except NotFound as exc:
        return console().render("error.html", title="Not found", message=exc.message), 404
    values = review_context(data, console().session, _ctx().settings.prometheus_url)
    return Response(values["markdown"], mimetype="text/markdown; charset=utf-8")


@bp.get("/console/runbooks")
@require("viewer")
def runbook_list() -> Any:
    return console().render("runbooks.html", title="Runbooks", runbooks=_ctx().runbooks.runbooks)


@bp.get("/console/runbooks/<runbook_id>")
@require("viewer")
def runbook_page(runbook_id: str) -> Any:
    try:
        values = runbook_context(_ctx().runbooks, _ctx().settings.runbooks_dir, runbook_id)
    except NotFound as exc:
        return console().render("error.html", title="Not found", message=exc.message), 404
    return console().render("runbook.html", title=f"Runbook {runbook_id}", **values)
