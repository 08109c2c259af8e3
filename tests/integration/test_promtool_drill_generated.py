"""The drill variant is generated from the source files and the committed copies are fresh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from receiver.rulegen import (
    GENERATED_ALERTMANAGER,
    GENERATED_PROMETHEUS,
    GENERATED_RULES,
    compress_expr,
    render_drill_configs,
    write_committed,
)

REPO = Path(__file__).resolve().parents[2]


def test_committed_drill_files_are_fresh(tmp_path: Path) -> None:
    write_committed(REPO, out_root=tmp_path)
    for rel in (GENERATED_RULES, GENERATED_PROMETHEUS, GENERATED_ALERTMANAGER):
        assert (REPO / rel).read_text() == (tmp_path / rel).read_text(), (
            f"{rel} is stale: run `.venv/bin/python -m receiver.rulegen` and commit"
        )


def test_drill_rules_are_compressed_versions_of_the_source() -> None:
    source = {
        r.get("alert") or r["record"]: r
        for f in ("recording.yml", "model_alerts.yml")
        for g in yaml.safe_load((REPO / "alert_rules" / f).read_text())["groups"]
        for r in g["rules"]
    }
    drill = {
        r.get("alert") or r["record"]: r
        for g in yaml.safe_load((REPO / GENERATED_RULES).read_text())["groups"]
        for r in g["rules"]
    }
    assert source.keys() == drill.keys()
    assert drill["ModelLatencyP95High"]["for"] == "8s"  # 4m / 30
    assert drill["ModelReleaseErrorRatioHigh"]["for"] == "2s"  # 1m / 30, floored at 2s
    assert "offset 2m" in drill["model:model_request_errors:ratio_rate1h_offset1h"]["expr"]
    assert drill["ModelTargetDown"]["for"] == "4s"  # 2m / 30
    assert "[10s]" in drill["model:model_requests:rate5m"]["expr"]
    assert drill["ModelAUCDrop"]["labels"] == source["ModelAUCDrop"]["labels"]
    assert drill["ModelAUCDrop"]["annotations"] == source["ModelAUCDrop"]["annotations"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("rate(x[5m])", "rate(x[10s])"),
        ("rate(x[1m])", "rate(x[5s])"),  # floor: a window keeps several 1s scrapes
        ("max_over_time(x[1h:5m])", "max_over_time(x[2m:10s])"),
        ("x offset 1h", "x offset 2m"),
        ('x{le="0.5"}[3d]', 'x{le="0.5"}[2h24m]'),
    ],
)
def test_compress_expr(expr: str, expected: str) -> None:
    assert compress_expr(expr, 30) == expected


def test_render_drill_configs_is_runnable(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret")
    paths = render_drill_configs(
        tmp_path / "drill",
        receiver_url="http://127.0.0.1:18080/api/v1/alerts",
        model_server_targets={"127.0.0.1:18000": "fraud"},
        alertmanager_url="http://127.0.0.1:19093",
        credentials_file=token,
    )
    checks = [
        ["promtool", "check", "rules", "--lint-fatal", str(paths.rules)],
        ["promtool", "check", "config", str(paths.prometheus)],
        ["amtool", "check-config", str(paths.alertmanager)],
    ]
    for argv in checks:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    prom = yaml.safe_load(paths.prometheus.read_text())
    assert prom["global"]["evaluation_interval"] == "1s"
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19093"]
    model_job = next(j for j in prom["scrape_configs"] if j["job_name"] == "model-server")
    assert model_job["static_configs"] == [{"targets": ["127.0.0.1:18000"], "labels": {"model": "fraud"}}]
    am = yaml.safe_load(paths.alertmanager.read_text())
    hooks = [h for r in am["receivers"] for h in r.get("webhook_configs", [])]
    assert {h["url"] for h in hooks} == {"http://127.0.0.1:18080/api/v1/alerts"}
    assert {h["http_config"]["authorization"]["credentials_file"] for h in hooks} == {str(token)}
    assert am["route"]["group_wait"] == "1s"
    assert "s3cret" not in paths.alertmanager.read_text()


@pytest.mark.parametrize("rel", ["prometheus/prometheus.yml", GENERATED_PROMETHEUS])
def test_prometheus_configs_are_valid(rel: str) -> None:
    # --syntax-only: the rule files live at their compose mount points, not on this machine
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(REPO / rel)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
