"""Request signatures of the two-way integrations, checked before anything is read from the body.

* Slack (v0): ``X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>")>`` with
  ``X-Slack-Request-Timestamp``; a timestamp more than five minutes away from now is refused (a replay
  within the window is caught by the store, which remembers every signature it accepted).
* PagerDuty (v3 webhooks): ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, raw body)>``, possibly
  several comma-separated (during a secret rotation); one match is enough.

Comparisons are constant-time; errors say what was wrong, never the expected value.
"""

from __future__ import annotations

import hashlib
import hmac

from receiver.config import Secret
from receiver.errors import SignatureError

__all__ = [
    "SLACK_WINDOW_SECONDS",
    "pagerduty_signature",
    "slack_signature",
    "verify_pagerduty",
    "verify_slack",
]

SLACK_WINDOW_SECONDS = 300.0


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def pagerduty_signature(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_slack(
    secret: Secret,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float,
    window: float = SLACK_WINDOW_SECONDS,
) -> None:
    """Raise :class:`SignatureError` unless the request is signed with ``secret`` and fresh."""
    if not timestamp or not signature:
        raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise SignatureError("X-Slack-Request-Timestamp is not a number") from None
    if abs(now - stamp) > window:
        raise SignatureError(f"stale request: timestamp is more than {window:g}s from now")
    expected = slack_signature(secret.reveal(), timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureError("bad Slack request signature")


def verify_pagerduty(secret: Secret, body: bytes, header: str | None) -> None:
    """Raise :class:`SignatureError` unless one of the header's ``v1=`` signatures matches."""
    if not header:
        raise SignatureError("missing X-PagerDuty-Signature")
    expected = pagerduty_signature(secret.reveal(), body).encode()
    given = [part.strip() for part in header.split(",") if part.strip().startswith("v1=")]
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in given):
        raise SignatureError("bad PagerDuty webhook signature")
