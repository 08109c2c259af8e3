"""Payloads that once got past the door and broke later, against the real ``receiver serve`` process:
lone surrogates (in a label, in groupKey) and a 100 001-digit integer (issue 14, part 1)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.payloads import alert, notification, write_runbooks
from tests.support.realparts import wait_until
from tests.support.serve_process import ServeProcess, start_serve


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    running = start_serve(tmp_path, runbooks_dir=write_runbooks(tmp_path / "runbooks"), responses=False)
    yield running
    running.stop()


def _raw(document: dict[str, Any], old: str, new: str) -> bytes:
    """JSON of ``document`` with the quoted string ``old`` replaced by raw JSON text ``new``."""
    text = json.dumps(document)
    assert f'"{old}"' in text
    return text.replace(f'"{old}"', new).encode()


def _rejected(serve: ServeProcess) -> list[dict[str, Any]]:
    response = serve.get("/api/v1/rejected")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rejected"]
    return rows


def _incidents(serve: ServeProcess) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = serve.get("/api/v1/incidents").json()["incidents"]
    return rows


@pytest.mark.parametrize(
    ("where", "path"),
    [("model", "alerts[0].labels.model"), ("groupKey", "groupKey")],
)
def test_lone_surrogate_is_a_400_naming_the_path_and_never_blocks_others(
    serve: ServeProcess, where: str, path: str
) -> None:
    document = notification(alert(model="PLACEHOLDER"))
    if where == "groupKey":
        document = notification(alert())
        document["groupKey"] = "PLACEHOLDER"
    body = _raw(document, "PLACEHOLDER", '"bad\\ud800model"')
    response = serve.post(body)
    assert response.status_code == 400, response.text
    problems = response.json()["error"]["problems"]
    assert any(p.startswith(f"{path}: lone surrogate") for p in problems), problems
    (kept,) = _rejected(serve)
    assert kept["status"] == 400 and kept["body"].encode() == body  # the exact bytes, stored safely
    assert any(path in p for p in kept["problems"])

    started = time.monotonic()
    good = serve.post(notification(alert(model="good")))
    assert good.status_code == 200, good.text
    wait_until(lambda: _incidents(serve), timeout=10, message="the next notification applied")
    assert time.monotonic() - started < 5


def test_integer_beyond_the_digit_limit_is_a_400_with_the_body_kept(serve: ServeProcess) -> None:
    body = _raw(notification(alert()), "4", "1" * 100001)  # "version": 100001 digits
    response = serve.post(body)
    assert response.status_code == 400, response.text
    assert "4300 digits" in " ".join(response.json()["error"]["problems"])
    (kept,) = _rejected(serve)
    assert kept["status"] == 400 and len(kept["body_base64"]) > 0
