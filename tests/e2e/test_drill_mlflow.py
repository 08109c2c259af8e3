"""``receiver drill --registry mlflow --scenario bad-release`` end to end: the drill starts a real
``mlflow server``, the receiver contains the bad release by moving MLflow's ``champion`` alias back to v1,
and MLflow's own REST API (a fresh server on the drill's store, after the drill stopped everything) says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from model_registry.mlflow_server import start_mlflow_server

REPO = Path(__file__).resolve().parents[2]
API = "/api/2.0/mlflow"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_drill_on_mlflow_rolls_back_the_champion(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    workdir = tmp_path / "drill"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver.cli",
            "drill",
            "--registry",
            "mlflow",
            "--scenario",
            "bad-release",
            "--workdir",
            str(workdir),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["passed"] and report["config"]["registry"] == "mlflow"
    (result,) = report["scenarios"]
    assert [e["action"] for e in result["registry_history"]][-1] == "rollback"

    server = start_mlflow_server(workdir / "mlflow")  # the drill's own store, read by MLflow itself
    try:
        base = server.url + API
        name = result["model"]
        model = requests.get(base + "/registered-models/get", params={"name": name}, timeout=10).json()
        aliases = {a["alias"]: a["version"] for a in model["registered_model"]["aliases"]}
        champion = requests.get(
            base + "/model-versions/get", timeout=10, params={"name": name, "version": aliases["champion"]}
        ).json()["model_version"]
        tags = {t["key"]: t["value"] for t in champion["tags"]}
        assert tags["registry.version"] == "v1"
        versions = requests.get(
            base + "/model-versions/search", params={"filter": f"name='{name}'"}, timeout=10
        ).json()["model_versions"]
        v2 = next(
            v for v in versions if {t["key"]: t["value"] for t in v["tags"]}["registry.version"] == "v2"
        )
        assert {t["key"]: t["value"] for t in v2["tags"]}["registry.unhealthy"] == "true"
        model_tags = {t["key"]: t["value"] for t in model["registered_model"]["tags"]}
        assert json.loads(model_tags["registry.traffic"]) == {"v1": 100.0}
        audit = requests.get(
            base + "/experiments/get-by-name", timeout=10, params={"experiment_name": "model-registry-audit"}
        ).json()["experiment"]
        runs = requests.post(
            base + "/runs/search",
            timeout=10,
            json={
                "experiment_ids": [audit["experiment_id"]],
                "filter": f"tags.`registry.model` = '{name}' and tags.`registry.action` = 'rollback'",
            },
        ).json()
        (run,) = runs["runs"]
        run_tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert run_tags["registry.actor"] == "receiver" and "incident" in run_tags["registry.reason"]
    finally:
        server.stop()
