"""Settings precedence, validation messages naming the setting, token files and secret hygiene."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from receiver.config import Secret, load_settings, resolve_credentials
from receiver.errors import ConfigError
from receiver.logging import RedactingFormatter, redact


def test_defaults() -> None:
    settings = load_settings(env={})
    assert settings.port == 9099 and settings.max_body_bytes == 1024 * 1024
    assert settings.runbooks_dir == Path("runbooks") and settings.dry_run is False
    assert settings.prometheus_url == "http://127.0.0.1:9090"


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yml"
    config.write_text("port: 1000\nhost: 0.0.0.0\ndry_run: true\nthreads: 3\n")
    env = {"RECEIVER_PORT": "2000", "RECEIVER_THREADS": "5"}
    settings = load_settings(config_file=config, env=env, overrides={"port": 3000, "host": None})
    assert (settings.port, settings.host, settings.threads, settings.dry_run) == (3000, "0.0.0.0", 5, True)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RECEIVER_PORT": "eighty"}, "setting 'port' (from environment RECEIVER_PORT): expected an integer"),
        (
            {"RECEIVER_DRY_RUN": "maybe"},
            "setting 'dry_run' (from environment RECEIVER_DRY_RUN): expected true or false",
        ),
        ({"RECEIVER_PORT": "70000"}, "port: expected 0..65535, got 70000"),
        ({"RECEIVER_PROMETHEUS_URL": "localhost:9090"}, "prometheus_url: expected an http(s) URL"),
        ({"RECEIVER_MAX_BODY_BYTES": "10"}, "max_body_bytes: expected at least 1024"),
        ({"RECEIVER_SHUTDOWN_GRACE_SECONDS": "0"}, "shutdown_grace_seconds: expected 0 < seconds <= 600"),
    ],
)
def test_invalid_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert message in info.value.message


def test_config_file_problems(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("prot: 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) prot"):
        load_settings(config_file=config, env={})
    config.write_text("port: [1\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_settings(config_file=config, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(config_file=tmp_path / "missing.yml", env={})


def test_tokens_generated_once_with_mode_0600(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(env={}, overrides={"data_dir": tmp_path})
    with caplog.at_level(logging.WARNING, logger="receiver.config"):
        first = resolve_credentials(settings)
    token_file = tmp_path / "webhook-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert first.webhook_token is not None and first.admin_token is not None
    assert first.webhook_token.reveal() == token_file.read_text().strip()
    assert first.webhook_token != first.admin_token
    assert str(token_file) in caplog.text and first.webhook_token.reveal() not in caplog.text
    again = resolve_credentials(settings)
    assert again.webhook_token == first.webhook_token  # read back, not regenerated


def test_token_from_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "admin").write_text("file-admin\n")
    settings = resolve_credentials(
        load_settings(
            env={"RECEIVER_WEBHOOK_TOKEN": "env-hook"},
            overrides={"admin_token_file": tmp_path / "admin", "data_dir": tmp_path},
        )
    )
    assert settings.webhook_token is not None and settings.webhook_token.matches("env-hook")
    assert settings.admin_token is not None and settings.admin_token.matches("file-admin")
    assert "env-hook" not in repr(settings) and "file-admin" not in repr(settings)
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match=r"setting .admin_token_file..* is empty"):
        resolve_credentials(load_settings(env={}, overrides={"admin_token_file": tmp_path / "empty"}))


def test_logs_redact_secrets_and_authorization() -> None:
    formatter = RedactingFormatter([Secret("s3cr3t-value")])
    record = logging.LogRecord(
        "receiver",
        logging.INFO,
        __file__,
        1,
        "got s3cr3t-value with Authorization: Bearer abc.def",
        None,
        None,
    )
    text = formatter.format(record)
    assert "s3cr3t-value" not in text and "abc.def" not in text and '"level": "INFO"' in text
    assert redact("password=hunter2 token: xyz") == "password=*** token: ***"


def test_registry_url_selects_mlflow_and_wins_over_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "RECEIVER_REGISTRY_URL": "mlflow+http://127.0.0.1:5000",
            "RECEIVER_REGISTRY_DB": str(tmp_path / "r.db"),
            "RECEIVER_REGISTRY_TOKEN_FILE": str(tmp_path / "tok"),
        }
    )
    assert settings.registry_target == "mlflow+http://127.0.0.1:5000"
    assert settings.registry_token_file == tmp_path / "tok"
    assert load_settings(env={"RECEIVER_REGISTRY_DB": str(tmp_path / "r.db")}).registry_target == str(
        tmp_path / "r.db"
    )
    assert load_settings(env={}).registry_target is None
    for bad in ("http://127.0.0.1:5000", "mlflow+ftp://x", "mlflow+http://"):
        with pytest.raises(ConfigError, match="registry_url: expected mlflow\\+http"):
            load_settings(env={"RECEIVER_REGISTRY_URL": bad})


def test_no_worker_flag_and_env_make_a_web_only_replica(tmp_path: Path) -> None:
    import argparse

    from receiver.commands import serve

    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    assert serve.settings_from_args(parser.parse_args(["serve"]), env={}).run_worker is True
    no_worker = parser.parse_args(["serve", "--no-worker"])
    assert serve.settings_from_args(no_worker, env={}).run_worker is False
    assert load_settings(env={"RECEIVER_RUN_WORKER": "false"}).run_worker is False
    config = tmp_path / "receiver.yml"
    config.write_text("run_worker: false\n")
    # the flag only switches the worker off: without it, the file's or the environment's value stands
    from_file = parser.parse_args(["serve", "--config", str(config)])
    assert serve.settings_from_args(from_file, env={}).run_worker is False
