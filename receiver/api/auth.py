"""Request authentication: bearer token or basic auth, compared in constant time.

The ``*_header_ok`` forms take the raw ``Authorization`` value, so the HTTP front can check credentials
from the headers alone, before any body is read (:mod:`receiver.front`).
"""

from __future__ import annotations

import base64
import binascii

from werkzeug.wrappers import Request

from receiver.config import Secret

__all__ = ["basic_header_ok", "bearer_header_ok", "check_basic", "check_bearer"]


def bearer_header_ok(header: str, token: Secret | None) -> bool:
    scheme, _, value = header.partition(" ")
    if token is None or scheme.lower() != "bearer":
        return False
    return token.matches(value.strip())


def basic_header_ok(header: str, user: str | None, password: Secret | None) -> bool:
    scheme, _, value = header.partition(" ")
    if not user or password is None or scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    given_user, sep, given_password = decoded.partition(b":")
    user_ok = Secret(user).matches(given_user)
    password_ok = password.matches(given_password)
    return bool(sep) and user_ok and password_ok


def check_bearer(request: Request, token: Secret | None) -> bool:
    return bearer_header_ok(request.headers.get("Authorization", ""), token)


def check_basic(request: Request, user: str | None, password: Secret | None) -> bool:
    return basic_header_ok(request.headers.get("Authorization", ""), user, password)
