"""Shared fixtures: real Prometheus/Alertmanager launchers and HTTP sinks that are always stopped.

Tests that start Prometheus or Alertmanager (through ``prometheus_factory``/``alertmanager_factory`` or by
asking for ``real_parts``) run once per selected version pair: ``--real-parts=bookworm,trixie`` (the
default; also ``RECEIVER_TEST_PARTS``); the whole drill set runs on the first selected pair and the
bad-release drill on the others (``@pytest.mark.pairs``). A selected pair that is not installed fails the
test, it is not skipped: ``scripts/setup.sh`` installs both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.realparts import (
    PARTS,
    PartsVersions,
    RecordingServer,
    RunningProcess,
    parts_path,
    start_alertmanager,
    start_prometheus,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

# the session-scoped real MLflow server and per-test registries on it
pytest_plugins = ["tests.support.mlflow"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--real-parts",
        default=os.environ.get("RECEIVER_TEST_PARTS", "bookworm,trixie"),
        help=f"comma-separated Alertmanager/Prometheus version pairs to run against: {', '.join(PARTS)} "
        "(default bookworm,trixie; env RECEIVER_TEST_PARTS)",
    )


def _selected(config: pytest.Config) -> list[str]:
    names = [n.strip() for n in str(config.getoption("--real-parts")).split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown or not names:
        raise pytest.UsageError(f"--real-parts: unknown {unknown or names}; choose from {', '.join(PARTS)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "real_parts" in metafunc.fixturenames:
        names = _selected(metafunc.config)
        # @pytest.mark.pairs("first"|"rest"): the eight-scenario drill runs on the first selected pair and
        # one scenario on the others, so every pair is drilled without paying for the whole set twice
        marker = metafunc.definition.get_closest_marker("pairs")
        if marker is not None:
            if marker.args not in (("first",), ("rest",)):
                raise pytest.UsageError(f"{metafunc.definition.nodeid}: pairs() takes 'first' or 'rest'")
            names = names[:1] if marker.args == ("first",) else names[1:]
        metafunc.parametrize("real_parts", names, indirect=True, scope="module")


@pytest.fixture(scope="module")
def real_parts(request: pytest.FixtureRequest) -> Iterator[PartsVersions]:
    """The Alertmanager/Prometheus pair of this run; its binaries come first on PATH meanwhile."""
    parts = PARTS[request.param]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", parts_path(parts, os.environ.get("PATH", "")))
        yield parts


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def prometheus_factory(tmp_path: Path, real_parts: PartsVersions) -> Iterator[Callable[..., RunningProcess]]:
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
def alertmanager_factory(
    tmp_path: Path, real_parts: PartsVersions
) -> Iterator[Callable[..., RunningProcess]]:
    """``alertmanager_factory(config)`` starts a real Alertmanager; stopped after the test."""
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
