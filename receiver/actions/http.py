"""``http``: call an allow-listed URL with a templated JSON body (deploy tools, feature flags).

The URL must fall under one of ``settings.http_allow_list`` (same scheme and host, path under the prefix at a
segment boundary - ``https://flags.internal/api`` allows ``/api/x`` but not ``/apix`` nor another host).
A bearer token is read from ``token_file`` at call time and never recorded. Non-2xx is an error (5xx and 429
are retried). Not idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from receiver.actions.base import ActionContext, ActionResult, BaseAction
from receiver.actions.transport import send
from receiver.errors import ActionParamError

__all__ = ["HttpAction", "url_allowed"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def url_allowed(url: str, allow_list: Sequence[str]) -> bool:
    """True if ``url`` is under one of the allow-listed prefixes (scheme, host and port exact)."""
    target = urlsplit(url)
    if target.scheme not in ("http", "https") or "@" in target.netloc or not target.hostname:
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


class HttpAction(BaseAction):
    kind = "http"
    containment = False
    idempotent = False

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
