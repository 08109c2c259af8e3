"""``/readyz`` of the real ``receiver serve`` process when its store cannot grow (issue 14, part 1).

A full disk is made real for that one process: its file size limit (``RLIMIT_FSIZE``, set from outside
with ``prlimit``) is lowered to the size its files have now, so every write that grows a file fails the
way ENOSPC does (Python ignores ``SIGXFSZ``, the write returns an error)."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.payloads import alert, notification, write_runbooks
from tests.support.serve_process import ServeProcess, start_serve


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    running = start_serve(tmp_path, runbooks_dir=write_runbooks(tmp_path / "runbooks"), responses=False)
    yield running
    running.stop()


def test_readyz_fails_while_the_store_cannot_grow(serve: ServeProcess) -> None:
    assert serve.get("/readyz").status_code == 200
    assert serve.post(notification(alert())).status_code == 200
    largest = max(p.stat().st_size for p in serve.data_dir.iterdir() if p.is_file())
    resource.prlimit(serve.process.pid, resource.RLIMIT_FSIZE, (largest, resource.RLIM_INFINITY))
    big = notification(alert(feature="x", description="d" * 400_000))
    assert serve.post(big).status_code == 503  # the defect's premise: webhooks cannot be stored
    ready = serve.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert any("no room" in p for p in ready.json()["error"]["problems"])

    unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    resource.prlimit(serve.process.pid, resource.RLIMIT_FSIZE, unlimited)
    assert serve.get("/readyz").status_code == 200  # and recovers when the disk has room again
    assert serve.post(big).status_code == 200
