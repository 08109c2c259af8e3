"""Choosing the store from settings, and keeping the database password out of every printed form."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.config import load_settings
from receiver.errors import ConfigError
from receiver.store.postgres_db import _lock_id, _pg_sql, redact_url


def test_database_url_comes_from_the_environment_and_never_prints(tmp_path: Path) -> None:
    settings = load_settings(env={"RECEIVER_DATABASE_URL": "postgresql://rx:s3cret@db:5432/receiver"})
    assert settings.database_url == "postgresql://rx:s3cret@db:5432/receiver"
    assert "s3cret" not in repr(settings)


def test_a_non_postgres_database_url_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="database_url: expected postgresql://"):
        load_settings(env={"RECEIVER_DATABASE_URL": "mysql://db/receiver"})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://rx:s3cret@db:5432/receiver", "postgresql://rx:***@db:5432/receiver"),
        ("postgresql://rx@db/receiver", "postgresql://rx@db/receiver"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_placeholders_and_literal_percent_signs_become_psycopg_syntax() -> None:
    assert _pg_sql("SELECT ? WHERE name LIKE 'a%'") == "SELECT %s WHERE name LIKE 'a%%'"


def test_advisory_lock_ids_are_stable_signed_64_bit() -> None:
    ids = {_lock_id(f"incident:r:{n}") for n in range(1000)}
    assert len(ids) == 1000 and all(-(2**63) <= i < 2**63 for i in ids)
    assert _lock_id("alert:x") == _lock_id("alert:x")
