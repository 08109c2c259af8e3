"""HTTP calls for the silence, http and page kinds: one place that maps transport failures and status
codes to retryable (:class:`ActionTransient`), permanent (:class:`ActionError`) or "sent, outcome unknown"
(:class:`ActionOutcomeUnknown`) failures.

Why the third kind: a read timeout or a connection dropped after the request went out does not mean the
call failed - the far side may have acted (an endpoint that takes 5 s answers after our 2 s timeout). A
non-idempotent kind must not be re-sent then. Only failures before anything was sent (connection refused,
connect timeout, name resolution) are transient. Redirects are never followed: an action goes to the
allow-listed URL or nowhere, and a 3xx is recorded as the answer (an error naming its ``Location``).
"""

from __future__ import annotations

from typing import Any

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from receiver.errors import ActionError, ActionOutcomeUnknown, ActionTimeout, ActionTransient

__all__ = ["send"]


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so no byte of the request left this process."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        reason = getattr(seen, "reason", None)
        if isinstance(seen, (NewConnectionError, NameResolutionError)) or isinstance(
            reason, (NewConnectionError, NameResolutionError)
        ):
            return True
        seen = (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None) or (
            seen.__cause__ or seen.__context__
        )
    return False


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
    """Send one request, never following redirects.

    Connect failures, 5xx and 429 are retryable; a read timeout or a connection lost after sending is
    :class:`ActionOutcomeUnknown`; 3xx and other non-2xx are permanent. Error messages name the method,
    URL and status, never the request headers (they may hold tokens).
    """
    try:
        response = session.request(
            method, url, json=json_body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.ConnectTimeout as exc:
        raise ActionTimeout(f"{what}: {method} {url}: no connection within {timeout:g}s") from exc
    except requests.Timeout as exc:
        raise ActionOutcomeUnknown(
            f"{what}: {method} {url}: sent, no answer within {timeout:g}s (outcome unknown)"
        ) from exc
    except requests.ConnectionError as exc:
        if _never_sent(exc):
            raise ActionTransient(f"{what}: {method} {url} failed: {type(exc).__name__}") from exc
        raise ActionOutcomeUnknown(
            f"{what}: {method} {url}: connection lost after sending (outcome unknown)"
        ) from exc
    except requests.RequestException as exc:
        raise ActionTransient(f"{what}: {method} {url} failed: {type(exc).__name__}") from exc
    if 200 <= response.status_code < 300:
        return response
    if 300 <= response.status_code < 400:
        location = response.headers.get("Location", "")
        raise ActionError(
            f"{what}: {method} {url} answered {response.status_code} redirect to {location[:200]!r}; "
            "redirects are not followed"
        )
    detail = f"{what}: {method} {url} answered {response.status_code}: {response.text[:300]}"
    if response.status_code >= 500 or response.status_code == 429:
        raise ActionTransient(detail)
    raise ActionError(detail)
