"""Who is looking: console sessions (durable, any replica), CSRF tokens, roles, and the security headers.

Sign-in is by the admin token (role admin), a user of the users file (scrypt hash, its role), or, when
``console_trusted_header`` is set, the user a trusted reverse proxy names in that header (SSO). The
session cookie holds a random token (the store keeps only its hash): ``HttpOnly``, ``SameSite=Lax``, and
``Secure`` when the request came over TLS or ``public_url`` is https. Every form carries the session's
CSRF token; the sign-in form, before any session exists, a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from flask import current_app, g, redirect, request
from jinja2 import Environment, PackageLoader, StrictUndefined
from werkzeug.wrappers import Response

from receiver.console import filters
from receiver.console.users import UsersFile, role_allows
from receiver.prom import PrometheusClient

__all__ = ["CONSOLE_CSP", "Console", "Viewer", "console", "current_viewer", "require"]

COOKIE = "receiver_console"
LOGIN_COOKIE = "receiver_console_signin"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Viewer:
    username: str
    role: str
    method: str
    csrf_token: str

    def can(self, role: str) -> bool:
        return role_allows(self.role, role)


class Console:
    """The console's per-app parts (no globals): templates, users file, Prometheus client, chart pool."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        # the console's own package templates (trusted source; never a template from a runbook or an alert):
        # autoescape and StrictUndefined, without the sandbox's per-attribute checks (a third of the page
        # time with 500 timeline rows). Labels and annotations only ever arrive as *values*, escaped.
        self.env = Environment(
            loader=PackageLoader("receiver.console", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            age=filters.age,
            stamp=filters.stamp,
            labelset=filters.labelset,
            compact=filters.compact,
            message_text=filters.message_text,
            hide_data_uris=filters.hide_data_uris,
        )
        self.users = UsersFile(settings.console_users_file)
        self.session = requests.Session()
        self.prometheus = PrometheusClient(settings.prometheus_url, timeout=4.0, session=self.session)
        self.pool = ThreadPoolExecutor(8, thread_name_prefix="console-chart")
        self.lifetime = settings.console_session_hours * 3600.0

    def render(self, name: str, **values: Any) -> str:
        from flask import url_for

        template = self.env.get_template(name)
        return template.render(url_for=url_for, viewer=g.get("console_viewer"), **values)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()


def console() -> Console:
    found: Console = current_app.extensions["console"]
    return found


def _store() -> Any:
    return current_app.extensions["receiver"].store


def secure_cookies() -> bool:
    public = console().settings.public_url or ""
    return request.is_secure or public.startswith("https://")


def start_session(username: str, role: str, method: str) -> tuple[str, Viewer]:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    _store().sessions.create(
        token, username=username, role=role, method=method, csrf_token=csrf, lifetime=console().lifetime
    )
    return token, Viewer(username, role, method, csrf)


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(console().lifetime),
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(),
        path="/",
    )


def _proxy_user() -> str | None:
    header = console().settings.console_trusted_header
    if not header:
        return None
    name = request.headers.get(header, "").strip()
    return name or None


def current_viewer() -> Viewer | None:
    """The signed-in viewer of this request (cached on ``g``); a proxy-named user gets a session."""
    if "console_viewer" in g:
        viewer: Viewer | None = g.console_viewer
        return viewer
    viewer = None
    token = request.cookies.get(COOKIE)
    session = _store().sessions.get(token) if token else None
    proxied = _proxy_user()
    if session is not None and (proxied is None or session.username == proxied):
        viewer = Viewer(session.username, session.role, session.method, session.csrf_token)
    elif proxied is not None:
        user = console().users.get(proxied)
        role = user.role if user is not None else console().settings.console_trusted_role
        new_token, viewer = start_session(proxied, role, "proxy")
        g.console_new_token = new_token
    g.console_viewer = viewer
    return viewer


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def signin_redirect() -> Response:
    target = request.full_path if request.method == "GET" else request.path
    target = target.rstrip("?")
    return redirect("/login?next=" + quote(_safe_next(target), safe="/"), code=303)


def csrf_ok(expected: str) -> bool:
    given = request.form.get("csrf", "")
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def forbidden(message: str) -> tuple[str, int]:
    return console().render("error.html", title="Forbidden", message=message), 403


def require(role: str = "viewer") -> Callable[[F], F]:
    """Signed in (else to the sign-in page), at least ``role`` (else 403), and on POST a valid CSRF
    token (else 403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            viewer = current_viewer()
            if viewer is None:
                return signin_redirect()
            if request.method == "POST" and not csrf_ok(viewer.csrf_token):
                return forbidden("the form's CSRF token is missing or wrong; reload the page and try again")
            if not viewer.can(role):
                return forbidden(f"this needs the {role} role; you are signed in as {viewer.role}")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def add_security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    token = g.pop("console_new_token", None)
    if token:
        set_session_cookie(response, token)
    return response
