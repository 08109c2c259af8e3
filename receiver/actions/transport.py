"""HTTP calls for the silence, http and page kinds: one place that maps transport failures and status
codes to retryable (:class:`ActionTransient`) or permanent (:class:`ActionError`) failures."""

from __future__ import annotations

from typing import Any

import requests

from receiver.errors import ActionError, ActionTimeout, ActionTransient

__all__ = ["send"]


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """Send one request; 5xx, 429, timeouts and connection errors are retryable, other non-2xx are not.

    Error messages name the method, URL and status, never the request headers (they may hold tokens).
    """
    try:
        response = session.request(method, url, json=json_body, headers=headers, timeout=timeout)
    except requests.Timeout as exc:
        raise ActionTimeout(f"{what}: {method} {url} timed out after {timeout:g}s") from exc
    except requests.RequestException as exc:
        raise ActionTransient(f"{what}: {method} {url} failed: {type(exc).__name__}") from exc
    if 200 <= response.status_code < 300:
        return response
    detail = f"{what}: {method} {url} answered {response.status_code}: {response.text[:300]}"
    if response.status_code >= 500 or response.status_code == 429:
        raise ActionTransient(detail)
    raise ActionError(detail)
