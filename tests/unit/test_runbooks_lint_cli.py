"""``receiver lint [DIR]`` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.cli import main

REPO = Path(__file__).resolve().parents[2]

GOOD = "id: drift\ntitle: Drift\nmatch: ['incident_type=\"drift\"']\n"


def test_shipped_runbooks_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(REPO / "runbooks")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{len(list((REPO / 'runbooks').glob('*.yml')))} runbooks OK"]


def test_default_directory_is_runbooks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "drift.yml").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert main(["lint"]) == 0
    assert capsys.readouterr().out.strip() == "1 runbooks OK"


def test_problems_printed_and_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(GOOD + "contain:\n  - {action: traffic_split, weight: 150}\n")
    (tmp_path / "b.yml").write_text(GOOD.replace("drift", "other") + "priority: high\n")
    assert main(["lint", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        f"{tmp_path / 'a.yml'}:5: contain[0].weight: 150 is greater than the maximum of 100",
        f"{tmp_path / 'b.yml'}:4: priority: 'high' is not of type 'integer'",
        "2 problem(s) in 2 file(s)",
    ]


def test_missing_directory_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["lint", str(tmp_path / "nope")]) == 1
    assert "is not a directory" in capsys.readouterr().out


def test_unreadable_schema_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "drift.yml").write_text(GOOD)
    assert main(["lint", str(tmp_path), "--schema", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the runbook schema" in capsys.readouterr().out


def test_invalid_schema_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "drift.yml").write_text(GOOD)
    (tmp_path / "bad.json").write_text('{"type": 12}')
    assert main(["lint", str(tmp_path), "--schema", str(tmp_path / "bad.json")]) == 2
    assert "is not a valid JSON Schema" in capsys.readouterr().out
