"""``receiver replay``: the runbook, incident key and severity each alert would get; no side effects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from receiver.cli import main
from tests.support.payloads import alert, notification

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, body: dict[str, Any]) -> Path:
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(body))
    return path


def test_replay_shows_runbook_key_and_severity_without_touching_anything(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # a data dir would appear here if replay wrote anything
    body = notification(
        alert(value="0.6", team="{{ 7*7 }}"),
        alert(alertname="ModelToxicOutputRatioHigh", incident_type="toxicity", model="chat", value="0.05"),
        alert(alertname="Mystery", incident_type="unknown", model="x", value=None),
    )
    path = _write(tmp_path, body)
    assert main(["replay", str(path), "--runbooks", str(REPO / "runbooks"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["alerts"] if isinstance(rows, dict) else rows
    by_name = {row["alertname"]: row for row in rows}
    assert by_name["FeatureDrift"]["runbook"] == "feature-drift"
    assert by_name["FeatureDrift"]["severity"] == "SEV1"  # value 0.6 >= 0.5
    assert by_name["FeatureDrift"]["incident_key"] == 'feature-drift|{"model":"churn"}'
    assert by_name["ModelToxicOutputRatioHigh"]["runbook"] == "toxic-output"
    assert by_name["ModelToxicOutputRatioHigh"]["severity"] == "SEV1"
    assert by_name["Mystery"]["runbook"] == "unmatched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.json"]


def test_replay_lists_every_problem_of_an_invalid_payload(tmp_path: Path, capsys: Any) -> None:
    body = notification(alert())
    body["alerts"][0]["startsAt"] = "yesterday"
    del body["status"]
    path = _write(tmp_path, body)
    assert main(["replay", str(path), "--runbooks", str(REPO / "runbooks")]) == 1
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "alerts[0].startsAt" in output and "status" in output
