"""The shipped rules on the harder corpus (tests/support/hard_corpus.py), replayed by ``receiver backtest``
against a REAL Prometheus serving it: every incident caught, no false page, median delay <= 7 minutes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.cli import main
from tests.support.hard_corpus import hard_scenario
from tests.support.realparts import RunningProcess, start_prometheus
from tests.support.scenarios import Scenario, write_tsdb_blocks

REPO = Path(__file__).resolve().parents[2]
RULES = [str(REPO / "alert_rules/recording.yml"), str(REPO / "alert_rules/model_alerts.yml")]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hard_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scenario, RunningProcess, Path]]:
    work = tmp_path_factory.mktemp("hard")
    scenario = hard_scenario(time.time() - 600)
    prom_dir = work / "prometheus"
    write_tsdb_blocks(scenario.write_openmetrics(work / "history.om"), prom_dir / "tsdb", timeout=300)
    prometheus = start_prometheus(
        prom_dir, {"global": {"evaluation_interval": "15s"}}, extra_args=["--storage.tsdb.retention.time=30d"]
    )
    try:
        yield scenario, prometheus, scenario.write_incidents(work / "incidents.yml")
    finally:
        prometheus.stop()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status = main(["backtest", *argv])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return captured.out


def test_shipped_rules_page_fast_and_never_on_noise(hard_history, capsys) -> None:
    scenario, prometheus, incidents = hard_history
    out = _run(
        capsys,
        "--prometheus",
        prometheus.url,
        "--rules",
        *RULES,
        "--start",
        str(scenario.start),
        "--end",
        str(scenario.end),
        "--incidents",
        str(incidents),
        "--json",
    )
    score: dict[str, Any] = json.loads(out)["score"]
    missed = [i["name"] for i in score["incidents"] if not i["detected_by"]]
    assert missed == []
    assert score["overall"]["recall"] == 1.0
    false_pages = [f for f in score["false_positives"] if f["labels"].get("severity") == "page"]
    assert false_pages == []
    assert score["pages"]["precision"] == 1.0
    assert score["overall"]["delay_median_seconds"] <= 7 * 60, score["overall"]
    # no page slower than 20 minutes: the slow burns (2x/4x/8x the budget) are the ticket tier's
    pages = {i["name"]: i for i in json.loads(out)["score"]["incidents"]}
    slow = {
        name: i["delay_seconds"]
        for name, i in pages.items()
        if not name.startswith("slow_burn") and i["delay_seconds"] > 20 * 60
    }
    assert slow == {}
    # the bad release is caught by the release watch (cause="release" reaches the bad-release runbook)
    release = next(i for i in score["incidents"] if i["name"].startswith("bad_release-"))
    assert "ModelReleaseErrorRatioHigh" in release["detected_by"]
    assert release["delay_seconds"] <= 180
    # and the release whose scores are off its own baseline, by the score half of the watch
    scores = next(i for i in score["incidents"] if i["name"].startswith("bad_release_scores"))
    assert "ModelReleasePredictionShift" in scores["detected_by"]
    assert scores["delay_seconds"] <= 180


def test_tune_prints_the_front_and_a_rule_diff(hard_history, capsys, tmp_path: Path) -> None:
    scenario, prometheus, incidents = hard_history
    # a detuned copy of the drift page: a threshold over the injected drift (PSI 0.35) misses it
    rules = tmp_path / "alerts.yml"
    rules.write_text(
        (REPO / "alert_rules/model_alerts.yml")
        .read_text()
        .replace(
            "model_version_feature:model_feature_psi:max > 0.2\n",
            "model_version_feature:model_feature_psi:max > 0.4\n",
            1,
        )
    )
    out = _run(
        capsys,
        "--prometheus",
        prometheus.url,
        "--rules",
        RULES[0],
        str(rules),
        "--start",
        str(scenario.start),
        "--end",
        str(scenario.end),
        "--incidents",
        str(incidents),
        "--tune",
        "--tune-alert",
        "ModelFeatureDriftHigh",
        "--tune-alert",
        "ModelToxicOutputRatioHigh",
    )
    drift = out[out.index("ModelFeatureDriftHigh") : out.index("ModelToxicOutputRatioHigh")]
    assert "threshold 0.4, for 5m" in drift
    assert "<- today" in drift and "today's setting is NOT on the front" in drift
    assert f"--- a/{rules}" in drift
    assert "-          model_version_feature:model_feature_psi:max > 0.4" in drift
    assert (
        "+          model_version_feature:model_feature_psi:max > 0.2" in drift
        or "+          model_version_feature:model_feature_psi:max > 0.3" in drift
    )
    toxicity = out[out.index("ModelToxicOutputRatioHigh") :]
    assert "2 incident(s) of type toxicity" in toxicity and "<- today" in toxicity

    status = main(
        [
            "backtest",
            "--prometheus",
            prometheus.url,
            "--rules",
            *RULES,
            "--start",
            str(scenario.start),
            "--end",
            str(scenario.end),
            "--tune",
        ]
    )
    assert status == 2 and "--tune needs --incidents" in capsys.readouterr().err
    status = main(
        [
            "backtest",
            "--prometheus",
            prometheus.url,
            "--rules",
            *RULES,
            "--start",
            str(scenario.start),
            "--end",
            str(scenario.end),
            "--incidents",
            str(incidents),
            "--tune-alert",
            "NoSuchAlert",
        ]
    )
    assert status == 2 and "no alerting rule named NoSuchAlert" in capsys.readouterr().err
