"""Console users from a file: names, roles and salted scrypt password hashes (never plain passwords).

The file (``console_users_file``) is YAML::

    users:
      - {name: alice, role: responder, password: "scrypt$16384$8$1$<salt>$<hash>"}

``python -m receiver.console.users`` prints a hash for a password read from the terminal. The file is read
again when it changes, so adding a user needs no restart.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from receiver.errors import ConfigError

__all__ = ["ROLES", "User", "UsersFile", "hash_password", "role_allows", "verify_password"]

ROLES = ("viewer", "responder", "admin")
_N, _R, _P = 2**14, 8, 1


def role_allows(role: str, needed: str) -> bool:
    """True when ``role`` is at least ``needed`` (viewer < responder < admin)."""
    if role not in ROLES or needed not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` string; False if malformed."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str


def parse_users(text: str, where: str) -> dict[str, User]:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"console users file {where}: invalid YAML: {exc}") from None
    entries = document.get("users") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"console users file {where}: expected a mapping with a 'users' list")
    users: dict[str, User] = {}
    for n, entry in enumerate(entries):
        at = f"console users file {where}: users[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: expected a mapping with name, role, password")
        name, role, password = entry.get("name"), entry.get("role"), entry.get("password")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{at}: 'name' must be a non-empty string")
        if role not in ROLES:
            raise ConfigError(f"{at}: 'role' must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(password, str) or not password.startswith("scrypt$"):
            raise ConfigError(
                f"{at}: 'password' must be a scrypt hash (python -m receiver.console.users), not plain text"
            )
        if name in users:
            raise ConfigError(f"{at}: user {name!r} is listed twice")
        users[name] = User(name, str(role), password)
    return users


class UsersFile:
    """The users of ``path`` (None: no users), re-read when the file's mtime changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: float | None = None
        self._users: dict[str, User] = {}

    def users(self) -> dict[str, User]:
        if self.path is None:
            return {}
        try:
            stamp = self.path.stat().st_mtime
            if stamp != self._stamp:
                self._users = parse_users(self.path.read_text(), str(self.path))
                self._stamp = stamp
        except OSError as exc:
            raise ConfigError(f"console users file {self.path}: cannot read: {exc.strerror}") from None
        return self._users

    def get(self, name: str) -> User | None:
        return self.users().get(name)

    def check(self, name: str, password: str) -> User | None:
        user = self.get(name)
        if user is None:
            verify_password(password, hash_password("x", salt=b"0" * 16))  # same work for unknown names
            return None
        return user if verify_password(password, user.password_hash) else None


def main() -> int:
    password = getpass.getpass("password: ")
    if len(password) < 8:
        print("error: use at least 8 characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
