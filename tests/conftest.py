"""Shared fixtures: real Prometheus/Alertmanager launchers and HTTP sinks that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.realparts import (
    RecordingServer,
    RunningProcess,
    start_alertmanager,
    start_prometheus,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

# the session-scoped real MLflow server and per-test registries on it
pytest_plugins = ["tests.support.mlflow"]


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., RunningProcess]]:
    """``prometheus_factory(config, rule_files=...)`` starts a real Prometheus; stopped after the test."""
    started: list[RunningProcess] = []

    def factory(config: str | dict[str, Any], **kwargs: Any) -> RunningProcess:
        proc = start_prometheus(tmp_path / f"prometheus-{len(started)}", config, **kwargs)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., RunningProcess]]:
    """``alertmanager_factory(config)`` starts a real Alertmanager 0.25; stopped after the test."""
    started: list[RunningProcess] = []

    def factory(config: str | dict[str, Any], **kwargs: Any) -> RunningProcess:
        proc = start_alertmanager(tmp_path / f"alertmanager-{len(started)}", config, **kwargs)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


@pytest.fixture
def recording_server() -> Iterator[Callable[..., RecordingServer]]:
    """``recording_server(fail_first=N)`` starts a real loopback HTTP sink; stopped after the test."""
    started: list[RecordingServer] = []

    def factory(**kwargs: Any) -> RecordingServer:
        server = RecordingServer(**kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL 15 for the session (see tests/support/postgres.py); each test makes a database."""
    from tests.support.postgres import start_postgres

    server = start_postgres()
    yield server
    server.destroy()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL."""
    url: str = pg_server.create_database()
    return url
