"""Request authentication: bearer token or basic auth, compared in constant time."""

from __future__ import annotations

import base64
import binascii

from flask import Request

from receiver.config import Secret

__all__ = ["check_basic", "check_bearer"]


def check_bearer(request: Request, token: Secret | None) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if token is None or scheme.lower() != "bearer":
        return False
    return token.matches(value.strip())


def check_basic(request: Request, user: str | None, password: Secret | None) -> bool:
    header = request.headers.get("Authorization", "")
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
