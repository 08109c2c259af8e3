"""Console sign-in without a browser: password hashes, the users file, durable sessions on both backends
(any replica accepts them), cookie flags, redirects, the opt-in proxy header, sign-out and expiry."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from receiver.app import create_app
from receiver.console.users import hash_password, parse_users, role_allows, verify_password
from receiver.errors import ConfigError
from receiver.store import SqlStore, open_database_store, open_store
from tests.support.payloads import write_runbooks
from tests.support.receiver_server import ADMIN_TOKEN, make_settings

PASSWORD = "correct horse battery"


def test_password_hashes_are_salted_scrypt_and_checked() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$") and first != second and PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password("wrong", first)
    assert not verify_password(PASSWORD, "scrypt$garbage") and not verify_password(PASSWORD, "plain")


def test_users_file_refuses_plain_passwords_bad_roles_and_duplicates() -> None:
    good = hash_password(PASSWORD)
    with pytest.raises(ConfigError, match="scrypt hash"):
        parse_users("users: [{name: a, role: viewer, password: hunter2}]", "u.yml")
    with pytest.raises(ConfigError, match="'role' must be one of"):
        parse_users(f"users: [{{name: a, role: root, password: '{good}'}}]", "u.yml")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_users(
            f"users: [{{name: a, role: viewer, password: '{good}'}}, "
            f"{{name: a, role: admin, password: '{good}'}}]",
            "u.yml",
        )
    with pytest.raises(ConfigError, match="'users' list"):
        parse_users("- just a list", "u.yml")
    assert role_allows("admin", "responder") and not role_allows("viewer", "responder")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., SqlStore]]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    opened: list[SqlStore] = []

    def factory(clock: Callable[[], float]) -> SqlStore:
        store = open_database_store(url, clock=clock) if url else open_store(tmp_path / "data", clock=clock)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def test_sessions_are_shared_by_replicas_hashed_and_expire(store_opener: Callable[..., SqlStore]) -> None:
    now = [1000.0]
    first, second = store_opener(lambda: now[0]), store_opener(lambda: now[0])
    first.sessions.create(
        "tok-1", username="alice", role="responder", method="password", csrf_token="c1", lifetime=60
    )
    seen = second.sessions.get("tok-1")  # another replica, same database
    assert seen is not None and (seen.username, seen.role, seen.csrf_token) == ("alice", "responder", "c1")
    assert second.sessions.get("tok-2") is None
    now[0] = 1061.0
    assert first.sessions.get("tok-1") is None  # expired
    assert first.sessions.prune() == 1
    first.sessions.create(
        "tok-3", username="bob", role="viewer", method="token", csrf_token="c3", lifetime=60
    )
    assert second.sessions.delete("tok-3") and first.sessions.get("tok-3") is None


def _hashes_only(store: SqlStore) -> list[str]:
    with store.db.read() as tx:
        return [row[0] for row in tx.execute("SELECT token_hash FROM console_sessions").fetchall()]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., FlaskClient]]:
    runbooks = write_runbooks(tmp_path / "rb")
    users = tmp_path / "users.yml"
    users.write_text(
        f"users:\n  - {{name: alice, role: responder, password: '{hash_password(PASSWORD)}'}}\n"
        f"  - {{name: sso-admin, role: admin, password: '{hash_password(PASSWORD)}'}}\n"
    )
    apps: list[Any] = []

    def factory(**overrides: Any) -> FlaskClient:
        settings = make_settings(tmp_path / "data", runbooks, responses=False, console_users_file=users)
        app = create_app(replace(settings, **overrides), start_worker=False)
        apps.append(app)
        return app.test_client()

    yield factory
    for app in apps:
        app.extensions["receiver"].close()


def _login(client: FlaskClient, **fields: str) -> Any:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return client.post("/login", data={"csrf": csrf.group(1), **fields})


def test_sign_in_by_password_or_token_sets_a_strict_cookie(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client()
    wrong = _login(client, username="alice", password="nope", next="/")
    assert wrong.status_code == 401 and "wrong token, user name or password" in wrong.text
    done = _login(client, username="alice", password=PASSWORD, next="/incidents/7")
    assert done.status_code == 303 and done.headers["Location"] == "/incidents/7"
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "alice" in client.get("/").text
    store = client.application.extensions["receiver"].store
    token = re.search(r"receiver_console=([^;]+)", cookie)
    assert token is not None and token.group(1) not in _hashes_only(store)  # only its hash is kept

    admin = make_client()
    assert _login(admin, token=ADMIN_TOKEN, next="/").status_code == 303
    assert "admin · admin" in admin.get("/").text
    assert _login(make_client(), token="not-the-token", next="/").status_code == 401


def test_next_never_leaves_the_console(make_client: Callable[..., FlaskClient]) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        done = _login(make_client(), username="alice", password=PASSWORD, next=target)
        assert done.headers["Location"] == "/", target


def test_secure_cookie_behind_tls(make_client: Callable[..., FlaskClient]) -> None:
    done = _login(make_client(public_url="https://console.example"), username="alice", password=PASSWORD)
    assert "Secure" in done.headers["Set-Cookie"]


def test_another_replica_accepts_the_session_and_sign_out_ends_it(
    make_client: Callable[..., FlaskClient],
) -> None:
    first, second = make_client(), make_client()
    done = _login(first, username="alice", password=PASSWORD, next="/")
    token = re.search(r"receiver_console=([^;]+)", done.headers["Set-Cookie"])
    assert token is not None
    second.set_cookie("receiver_console", token.group(1))
    page = second.get("/")
    assert page.status_code == 200 and "alice · responder" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    assert second.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert second.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
    assert first.get("/").status_code == 303  # the session is gone for every replica


def test_proxy_header_is_opt_in(make_client: Callable[..., FlaskClient]) -> None:
    plain = make_client()
    assert plain.get("/", headers={"X-Forwarded-User": "alice"}).status_code == 303  # not trusted by default
    proxied = make_client(console_trusted_header="X-Forwarded-User")
    known = proxied.get("/", headers={"X-Forwarded-User": "sso-admin"})
    assert known.status_code == 200 and "sso-admin · admin" in known.text  # role from the users file
    assert "HttpOnly" in known.headers["Set-Cookie"]
    other = make_client(console_trusted_header="X-Forwarded-User")
    stranger = other.get("/", headers={"X-Forwarded-User": "carol"})
    assert "carol · viewer" in stranger.text  # console_trusted_role
    assert other.get("/", headers={"X-Forwarded-User": "dave"}).text.count("dave · viewer") == 1
