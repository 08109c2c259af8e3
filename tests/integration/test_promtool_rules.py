"""The alert rules pass `promtool check rules --lint-fatal` and every `promtool test rules` file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = [
    REPO / "alert_rules/recording.yml",
    REPO / "alert_rules/model_alerts.yml",
    REPO / "alert_rules/engine_alerts.yml",
    REPO / "alert_rules/generated/drill-rules.yml",
]
TEST_FILES = sorted((REPO / "alert_rules/tests").glob("*.yml"))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_lint_clean(path: Path) -> None:
    result = _promtool("check", "rules", "--lint-fatal", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_promtool_test() -> None:
    alerts = {
        rule["alert"]
        for source in ("model_alerts.yml", "engine_alerts.yml")
        for group in yaml.safe_load((REPO / "alert_rules" / source).read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested: set[str] = set()
    for path in TEST_FILES:
        for group in yaml.safe_load(path.read_text())["tests"]:
            tested |= {
                case["alertname"] for case in group.get("alert_rule_test", []) if case.get("exp_alerts")
            }
    assert alerts - tested == set(), f"alerts without a firing promtool test: {sorted(alerts - tested)}"


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", path.name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=path.parent,
    )
    assert result.returncode == 0, f"promtool test rules {path.name} failed:\n{result.stdout}{result.stderr}"
