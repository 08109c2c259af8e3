"""Settings: defaults < config file (YAML) < ``RECEIVER_*`` environment < CLI flags, validated once.

:func:`load_settings` returns a frozen :class:`Settings`; every problem raises :class:`ConfigError` naming
the setting and where its value came from. Secrets (tokens, the basic-auth password) are held in
:class:`Secret`, whose ``repr`` never shows the value. :func:`resolve_credentials` reads token files, or
generates a token into ``<data-dir>/webhook-token`` / ``admin-token`` (mode 0600) when none is configured.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from receiver.errors import ConfigError

__all__ = ["ENV_PREFIX", "Secret", "Settings", "load_settings", "resolve_credentials"]

ENV_PREFIX = "RECEIVER_"
log = logging.getLogger("receiver.config")


class Secret:
    """A secret string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str | bytes) -> bool:
        """Constant-time comparison."""
        given = candidate.encode() if isinstance(candidate, str) else candidate
        return hmac.compare_digest(given, self._value.encode())

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9099
    data_dir: Path = Path("data")
    runbooks_dir: Path = Path("runbooks")
    webhook_token_file: Path | None = None
    webhook_token: Secret | None = field(default=None, repr=False)
    webhook_basic_user: str | None = None
    webhook_basic_password_file: Path | None = None
    webhook_basic_password: Secret | None = field(default=None, repr=False)
    admin_token_file: Path | None = None
    admin_token: Secret | None = field(default=None, repr=False)
    max_body_bytes: int = 1024 * 1024
    rejected_body_cap: int = 64 * 1024
    threads: int = 64  # webhook threads mostly wait on a group commit: more of them share each one
    connection_limit: int = 1000  # open connections waitress keeps (see receiver/front.py)
    request_deadline: float = 10.0  # seconds from a request's first byte to its last, else dropped
    shutdown_grace_seconds: float = (
        10.0  # a stop waits this long for work in flight, then leaves it to leases
    )
    log_level: str = "INFO"
    log_format: str = "json"
    run_worker: bool = True  # false: answer HTTP only; replicas that run it on the same database do the work
    worker_poll_interval: float = 1.0
    worker_max_attempts: int = 8
    busy_timeout_ms: int = 5000
    # where the state lives: SQLite in data_dir (default), or PostgreSQL shared by several replicas
    database_url: str | None = field(default=None, repr=False)  # may hold a password: never printed
    database_password_file: Path | None = None
    database_pool_size: int = 16
    replica: str = field(default_factory=lambda: socket.gethostname() or "receiver")
    lease_seconds: float = 15.0  # claims (responses, timers, action steps) a dead replica loses after this
    respond_concurrency: int = 4  # incidents responded to at once (one group's notifications stay in order)
    evidence_budget_seconds: float = 10.0  # all evidence queries of one moment together
    retention_days: float = 90.0  # raw bodies and closed incidents older than this are pruned (0: never)
    # used by later issues (actions, comms, verification); defaults point at a local stack
    prometheus_url: str = "http://127.0.0.1:9090"
    alertmanager_url: str = "http://127.0.0.1:9093"
    registry_db: Path | None = None
    # an MLflow Model Registry instead of the SQLite file (wins over registry_db when both are set):
    # mlflow+http(s)://host:port; its bearer token from registry_token_file, else $MLFLOW_TRACKING_TOKEN
    registry_url: str | None = None
    registry_token_file: Path | None = None
    dry_run: bool = False
    public_url: str | None = None
    grafana_url: str | None = None
    # responses (actions, comms, verification, escalation)
    responses: bool = True
    channels: dict[str, Any] | None = None
    config_dir: Path | None = None  # base for relative url_file paths; defaults to the config file's dir
    http_allow_list: tuple[str, ...] = ()
    pager_url: str | None = None
    pager_routing_key_file: Path | None = None
    pagerduty_webhook_secret_file: Path | None = None  # enables POST /pagerduty/webhook (v3, signed)
    cooldown_seconds: float = 600.0
    flap_max: int = 3
    verify_interval: float = 15.0
    time_scale: float = 1.0  # multiplies every runbook duration; drills compress time with e.g. 0.02
    # the console (receiver/console): users file (hashed passwords, roles), opt-in SSO header, sessions
    console_users_file: Path | None = None
    console_trusted_header: str | None = None  # e.g. X-Forwarded-User; only behind a proxy that sets it
    console_trusted_role: str = "viewer"  # role of a proxy-signed-in user not listed in the users file
    console_session_hours: float = 12.0

    @property
    def db_path(self) -> Path:
        return self.data_dir / "receiver.db"

    @property
    def registry_path(self) -> Path:
        return self.registry_db if self.registry_db is not None else self.data_dir / "registry.db"

    @property
    def registry_target(self) -> str | None:
        """What ``model_registry.open_registry`` opens: the MLflow URL, else the SQLite file, else None."""
        if self.registry_url:
            return self.registry_url
        return str(self.registry_db) if self.registry_db is not None else None

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


_SECRET_FIELDS = {"webhook_token", "admin_token", "webhook_basic_password"}
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _convert(name: str, raw: Any, source: str) -> Any:
    """Convert one raw value (YAML scalar or env string) to the field's type, or raise ConfigError."""
    kind = str(_FIELDS[name].type)
    where = f"setting {name!r} (from {source})"
    if raw is None:
        if "None" in kind:
            return None
        raise ConfigError(f"{where}: a value is required")
    if kind.startswith("dict"):
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise ConfigError(f"{where}: expected a mapping (JSON in the environment)") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
        return raw
    if kind.startswith("tuple"):
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{where}: expected a list of strings (comma-separated in the environment)")
        return tuple(i.strip() for i in items if i.strip())
    if name in _SECRET_FIELDS:
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{where}: expected a non-empty string")
        return Secret(raw.strip())
    if kind.startswith("int"):
        if isinstance(raw, bool):
            raise ConfigError(f"{where}: expected an integer, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {raw!r}") from None
    if kind.startswith("float"):
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
    if kind.startswith("bool"):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if "Path" in kind:
        if not isinstance(raw, (str, os.PathLike)) or not str(raw):
            raise ConfigError(f"{where}: expected a path, got {raw!r}")
        return Path(raw).expanduser()
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: expected a string, got {raw!r}")
    return raw


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: invalid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping of settings, got {type(document).__name__}"
        )
    unknown = sorted(str(k) for k in document if k not in _FIELDS)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}",
            [f"{k}: unknown setting" for k in unknown],
        )
    return {str(k): v for k, v in document.items()}


def _validate(settings: Settings) -> None:
    problems: list[str] = []
    if not 0 <= settings.port <= 65535:
        problems.append(f"port: expected 0..65535, got {settings.port}")
    if settings.max_body_bytes < 1024:
        problems.append(f"max_body_bytes: expected at least 1024, got {settings.max_body_bytes}")
    if settings.rejected_body_cap < 0:
        problems.append(f"rejected_body_cap: expected >= 0, got {settings.rejected_body_cap}")
    if not 1 <= settings.threads <= 256:
        problems.append(f"threads: expected 1..256, got {settings.threads}")
    if not 10 <= settings.connection_limit <= 10000:
        problems.append(f"connection_limit: expected 10..10000, got {settings.connection_limit}")
    if not 0 < settings.shutdown_grace_seconds <= 600:
        problems.append(
            f"shutdown_grace_seconds: expected 0 < seconds <= 600, got {settings.shutdown_grace_seconds}"
        )
    if settings.request_deadline <= 0:
        problems.append(f"request_deadline: expected > 0 seconds, got {settings.request_deadline}")
    if settings.log_level.upper() not in _LOG_LEVELS:
        problems.append(f"log_level: expected one of {', '.join(_LOG_LEVELS)}, got {settings.log_level!r}")
    if settings.log_format not in ("json", "text"):
        problems.append(f"log_format: expected json or text, got {settings.log_format!r}")
    if settings.worker_poll_interval <= 0:
        problems.append(f"worker_poll_interval: expected > 0, got {settings.worker_poll_interval}")
    if settings.database_url is not None and urlparse(settings.database_url).scheme not in (
        "postgresql",
        "postgres",
    ):
        problems.append(
            f"database_url: expected postgresql://user@host:port/dbname, got scheme "
            f"{urlparse(settings.database_url).scheme!r} (leave it unset for SQLite in data_dir)"
        )
    if not 1 <= settings.lease_seconds <= 600:
        problems.append(f"lease_seconds: expected 1..600, got {settings.lease_seconds}")
    if not 1 <= settings.respond_concurrency <= 64:
        problems.append(f"respond_concurrency: expected 1..64, got {settings.respond_concurrency}")
    if settings.evidence_budget_seconds <= 0:
        problems.append(f"evidence_budget_seconds: expected > 0, got {settings.evidence_budget_seconds}")
    if settings.retention_days < 0:
        problems.append(f"retention_days: expected >= 0 (0 keeps everything), got {settings.retention_days}")
    if not settings.replica or len(settings.replica) > 64:
        problems.append(f"replica: expected a name of 1..64 characters, got {settings.replica!r}")
    if settings.worker_max_attempts < 1:
        problems.append(f"worker_max_attempts: expected >= 1, got {settings.worker_max_attempts}")
    for name in ("prometheus_url", "alertmanager_url", "public_url", "grafana_url"):
        value = getattr(settings, name)
        if value is not None:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                problems.append(f"{name}: expected an http(s) URL, got {value!r}")
    if settings.registry_url is not None:
        parsed = urlparse(settings.registry_url.removeprefix("mlflow+"))
        if (
            not settings.registry_url.startswith("mlflow+")
            or parsed.scheme not in ("http", "https")
            or not parsed.netloc
        ):
            problems.append(
                f"registry_url: expected mlflow+http(s)://host:port, got {settings.registry_url!r}"
            )
    if not 0 < settings.time_scale <= 1:
        problems.append(f"time_scale: expected 0 < time_scale <= 1, got {settings.time_scale}")
    if settings.cooldown_seconds < 0:
        problems.append(f"cooldown_seconds: expected >= 0, got {settings.cooldown_seconds}")
    if settings.flap_max < 0:
        problems.append(f"flap_max: expected >= 0 (0 disables the flap guard), got {settings.flap_max}")
    if settings.verify_interval <= 0:
        problems.append(f"verify_interval: expected > 0, got {settings.verify_interval}")
    if settings.pager_url is not None and urlparse(settings.pager_url).scheme not in ("http", "https"):
        problems.append(f"pager_url: expected an http(s) URL, got {settings.pager_url!r}")
    for prefix in settings.http_allow_list:
        if urlparse(prefix).scheme not in ("http", "https") or not urlparse(prefix).netloc:
            problems.append(f"http_allow_list: expected http(s) URL prefixes, got {prefix!r}")
    if settings.webhook_basic_user and not (
        settings.webhook_basic_password or settings.webhook_basic_password_file
    ):
        problems.append("webhook_basic_user: set webhook_basic_password_file too")
    if settings.console_trusted_role not in ("viewer", "responder", "admin"):
        role = settings.console_trusted_role
        problems.append(f"console_trusted_role: expected viewer, responder or admin, got {role!r}")
    if not 0 < settings.console_session_hours <= 24 * 30:
        hours = settings.console_session_hours
        problems.append(f"console_session_hours: expected 0 < hours <= 720, got {hours}")
    if problems:
        raise ConfigError(f"invalid settings: {'; '.join(problems)}", problems)


def load_settings(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults < ``config_file`` < ``RECEIVER_*`` in ``env`` < ``overrides`` (CLI flags; None = unset).

    ``RECEIVER_CONFIG`` in ``env`` names the config file when ``config_file`` is not given.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_path = config_file or (Path(env["RECEIVER_CONFIG"]) if env.get("RECEIVER_CONFIG") else None)
    if config_path is not None:
        for name, raw in _read_config_file(config_path).items():
            values[name] = _convert(name, raw, f"config file {config_path}")
    for name in _FIELDS:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = _convert(name, env[key], f"environment {key}")
    for name, raw in (overrides or {}).items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        if raw is not None:
            values[name] = _convert(name, raw, "command line")
    if config_path is not None and "config_dir" not in values:
        values["config_dir"] = Path(config_path).resolve().parent
    settings = Settings(**values)
    _validate(settings)
    return dataclasses.replace(settings, log_level=settings.log_level.upper())


def _read_secret(path: Path, setting: str) -> Secret:
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            log.warning(
                "setting %r: %s is readable or writable by others (mode %o); chmod 600 it",
                setting,
                path,
                mode & 0o777,
            )
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"setting {setting!r}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"setting {setting!r}: {path} is empty")
    return Secret(text)


def _generated_token(path: Path) -> Secret:
    """Read ``path`` if it exists, else create it (mode 0600) with a fresh random token."""
    if path.exists():
        return _read_secret(path, path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    log.warning("generated a token into %s (mode 0600); give it to the client that calls this receiver", path)
    return Secret(token)


def resolve_credentials(settings: Settings, *, generate: bool = True) -> Settings:
    """Fill the secrets: from the setting itself (env), else its file, else a generated file in data_dir."""
    changes: dict[str, Any] = {}
    for name, default_file in (("webhook_token", "webhook-token"), ("admin_token", "admin-token")):
        if getattr(settings, name) is not None:
            continue
        token_file = getattr(settings, f"{name}_file")
        if token_file is not None:
            changes[name] = _read_secret(token_file, f"{name}_file")
        elif generate:
            changes[name] = _generated_token(settings.data_dir / default_file)
    if settings.webhook_basic_password is None and settings.webhook_basic_password_file is not None:
        changes["webhook_basic_password"] = _read_secret(
            settings.webhook_basic_password_file, "webhook_basic_password_file"
        )
    resolved = dataclasses.replace(settings, **changes)
    admin = resolved.admin_token
    webhook = (resolved.webhook_token, resolved.webhook_basic_password)
    if admin is not None and any(other is not None and admin.matches(other.reveal()) for other in webhook):
        # whoever can post alerts (Alertmanager's config) could then also read and act on incidents
        raise ConfigError(
            "admin_token: the same value as the webhook credential; give the admin API its own token",
            ["admin_token: equals webhook_token or webhook_basic_password"],
        )
    return resolved
