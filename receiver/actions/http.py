"""``http``: call an allow-listed URL with a templated JSON body (deploy tools, feature flags).

The URL must fall under one of ``settings.http_allow_list`` (same scheme and host, path under the prefix at a
segment boundary - ``https://flags.internal/api`` allows ``/api/x`` but not ``/apix`` nor another host).
A bearer token is read from ``token_file`` at call time and never recorded. Non-2xx is an error (5xx and 429
are retried). Not idempotent: a call sent without an answer is "unknown", never re-sent.

The allow-list check runs on the URL as the far side will see it: a path with a dot segment (``..``, ``.``,
also percent-encoded as ``%2e``) or a backslash is refused outright, since HTTP libraries and servers
resolve them after our check. Values interpolated into the URL (labels, annotations...) are
percent-encoded, so a label cannot add path segments. Redirects are never followed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from receiver.actions.base import ActionContext, ActionResult, BaseAction, render_params
from receiver.actions.transport import send
from receiver.errors import ActionParamError

__all__ = ["HttpAction", "url_allowed"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _ambiguous_path(path: str) -> bool:
    """A path that some library or server on the way would rewrite: dot segments or backslashes, checked
    raw and percent-decoded (twice, against double encoding)."""
    for candidate in (path, unquote(path), unquote(unquote(path))):
        if "\\" in candidate or any(segment in (".", "..") for segment in candidate.split("/")):
            return True
    return False


def url_allowed(url: str, allow_list: Sequence[str]) -> bool:
    """True if ``url`` is under one of the allow-listed prefixes (scheme, host and port exact) and its path
    means the same to every party (see :func:`_ambiguous_path`)."""
    target = urlsplit(url)
    if target.scheme not in ("http", "https") or "@" in target.netloc or not target.hostname:
        return False
    if _ambiguous_path(target.path):
        return False
    for prefix in allow_list:
        allowed = urlsplit(prefix)
        if (allowed.scheme, allowed.netloc.lower()) != (target.scheme, target.netloc.lower()):
            continue
        base = allowed.path.rstrip("/")
        path = target.path or "/"
        if not base or path == base or path.startswith(base + "/"):
            return True
    return False


def _url_encoded(value: Any) -> Any:
    """The template context with every string percent-encoded (for rendering the ``url`` parameter)."""
    if isinstance(value, str):
        return quote(value, safe="")
    if isinstance(value, Mapping):
        return {k: _url_encoded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_url_encoded(v) for v in value]
    return value


class HttpAction(BaseAction):
    kind = "http"
    containment = False
    idempotent = False

    def render(self, params: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        """Render as usual, except the URL: there every interpolated value is percent-encoded."""
        rest = {k: v for k, v in params.items() if k != "url"}
        rendered = super().render(rest, context)
        if "url" in params:
            rendered["url"] = render_params(params["url"], _url_encoded(context))
        return rendered

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"url", "method", "body", "token_file"}
        if unknown:
            raise ActionParamError(f"http: unknown parameter(s) {', '.join(sorted(unknown))}")
        url = params.get("url")
        if not isinstance(url, str) or not url:
            raise ActionParamError(f"http: 'url' must be a non-empty string, got {url!r}")
        method = str(params.get("method", "POST")).upper()
        if method not in _METHODS:
            raise ActionParamError(f"http: 'method' must be one of {', '.join(_METHODS)}, got {method!r}")
        body = params.get("body")
        if body is not None and not isinstance(body, (Mapping, list)):
            raise ActionParamError(f"http: 'body' must be a JSON object or list, got {type(body).__name__}")
        token_file = params.get("token_file")
        if token_file is not None and not isinstance(token_file, str):
            raise ActionParamError("http: 'token_file' must be a file path")
        return {"url": url, "method": method, "body": body, "token_file": token_file}

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        url = params["url"]
        if not url_allowed(url, ctx.settings.http_allow_list):
            raise ActionParamError(
                f"http: {url} is not under any prefix of settings.http_allow_list "
                f"({', '.join(ctx.settings.http_allow_list) or 'empty'})"
            )
        headers = {"Content-Type": "application/json", "X-Incident-Id": ctx.incident_id}
        if params.get("token_file"):
            try:
                token = Path(params["token_file"]).read_text().strip()
            except OSError as exc:
                raise ActionParamError(
                    f"http: cannot read token_file {params['token_file']}: {exc.strerror}"
                ) from exc
            headers["Authorization"] = f"Bearer {token}"
        response = send(
            ctx.http(),
            params["method"],
            url,
            what="http",
            timeout=ctx.timeout,
            json_body=params.get("body"),
            headers=headers,
        )
        return ActionResult(
            "succeeded",
            f"{params['method']} {url} -> {response.status_code}",
            {
                "url": url,
                "method": params["method"],
                "status": response.status_code,
                "response": response.text[:500],
            },
        )
