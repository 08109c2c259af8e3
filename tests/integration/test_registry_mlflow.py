"""The MLflow backend against a real ``mlflow server``: exactly one of two concurrent rollbacks, a version
created by a plain MLflow user (no tags of ours), what MLflow users see (aliases, tags, audit runs through
MLflow's own REST API), and MLflow stopped during an action (failed, retried, escalated, on the incident
timeline). Nothing is mocked."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from model_registry import ConflictError, RegistryUnavailableError, open_registry
from model_registry.mlflow_server import start_mlflow_server
from tests.support.payloads import alert, notification
from tests.support.realparts import wait_until
from tests.support.receiver_server import ADMIN_TOKEN, WEBHOOK_TOKEN, make_settings, start_receiver

REPO = Path(__file__).resolve().parents[2]
WHO: dict[str, Any] = {"actor": "tester", "reason": "test"}
API = "/api/2.0/mlflow"


def seed(target: str, model: str = "fraud") -> None:
    reg = open_registry(target)
    reg.register(model, "v1", artifact_path="m/v1", baseline=None, healthy=True, **WHO)
    reg.promote(model, "v1", **WHO)
    reg.register(model, "v2", artifact_path="m/v2", baseline=None, **WHO)
    reg.promote(model, "v2", **WHO)


def rest(url: str, path: str, **params: Any) -> dict[str, Any]:
    resp = requests.get(url.removeprefix("mlflow+") + API + path, params=params, timeout=10)
    resp.raise_for_status()
    return dict(resp.json())


_ROLLBACK = """
import json, sys, time
from pathlib import Path
from model_registry import ConflictError, RegistryUnavailableError, open_registry
url, go = sys.argv[1:3]
reg = open_registry(url)
while not Path(go).exists():
    time.sleep(0.002)
try:
    r = reg.rollback("fraud", actor="racer", reason="INC race", expected_active="v2")
    print(json.dumps(["rolled", r.to_version]))
except ConflictError as exc:
    print(json.dumps(["conflict", type(exc).__name__]))
"""


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_rollbacks_on_mlflow_give_exactly_one(mlflow_url, tmp_path, round_):
    seed(mlflow_url)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ROLLBACK, mlflow_url, str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    time.sleep(1.0)  # both imported and polling
    go.write_text("go")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    assert sorted(r[0] for r in results) == ["conflict", "rolled"], results
    reg = open_registry(mlflow_url)
    rollbacks = [e for e in reg.history("fraud") if e.action == "rollback"]
    assert len(rollbacks) == 1
    state = reg.state("fraud")
    assert state.active_version == "v1" and state.traffic == {"v1": 100.0}
    assert state.version("v2").unhealthy  # type: ignore[union-attr]
    assert reg.check("fraud") == []
    # MLflow's own API agrees: champion is MLflow version 1 (our v1)
    alias = rest(mlflow_url, "/registered-models/alias", name="fraud", alias="champion")["model_version"]
    assert alias["version"] == "1"
    assert {t["key"]: t["value"] for t in alias["tags"]}["registry.version"] == "v1"


def test_the_state_and_audit_are_visible_to_mlflow_users(mlflow_url):
    seed(mlflow_url)
    reg = open_registry(mlflow_url)
    reg.split_to_last_known_good("fraud", 50, actor="receiver", reason="INC-1 drift")
    model = rest(mlflow_url, "/registered-models/get", name="fraud")["registered_model"]
    tags = {t["key"]: t["value"] for t in model["tags"]}
    aliases = {a["alias"]: a["version"] for a in model["aliases"]}
    assert aliases == {"champion": "2", "last-known-good": "1"}
    assert json.loads(tags["registry.traffic"]) == {"v1": 50.0, "v2": 50.0}
    assert tags["registry.generation"] == "5"
    exp = rest(mlflow_url, "/experiments/get-by-name", experiment_name="model-registry-audit")["experiment"]
    runs = requests.post(
        mlflow_url[7:] + API + "/runs/search", timeout=10, json={"experiment_ids": [exp["experiment_id"]]}
    ).json()["runs"]
    assert len(runs) == 5
    newest = reg.history("fraud", 1)[0]
    assert (newest.action, newest.actor, newest.reason) == (
        "split_to_last_known_good",
        "receiver",
        "INC-1 drift",
    )
    assert newest.after == reg.state("fraud").summary()


def test_a_plain_mlflow_version_is_listed_served_and_rolled_to(mlflow_url, tmp_path):
    """A version logged by a plain MLflow user (the mlflow client, no tags of ours) and made champion."""
    mlflow = pytest.importorskip("mlflow")  # the 'mlflow' extra is part of 'test'
    from sklearn.linear_model import LogisticRegression

    url = mlflow_url.removeprefix("mlflow+")
    mlflow.set_tracking_uri(url)
    X = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]]
    estimator = LogisticRegression().fit(X, [0, 1, 0, 1])
    with mlflow.start_run():
        mlflow.sklearn.log_model(estimator, name="model", registered_model_name="plain")
    mlflow.MlflowClient().set_registered_model_alias("plain", "champion", "1")

    reg = open_registry(mlflow_url)
    assert "plain" in reg.models()
    state = reg.state("plain")
    assert state.active_version == "1" and state.traffic == {"1": 100.0}
    info = state.version("1")
    assert info is not None and info.baseline is None and info.metadata == {}
    assert reg.check("plain") == []
    # our release on top of it; the plain version served until then, so it is the rollback target
    reg.register("plain", "v2", artifact_path=str(tmp_path), baseline=None, **WHO)
    reg.promote("plain", "v2", **WHO)
    result = reg.rollback("plain", actor="receiver", reason="INC-2 bad release", expected_active="v2")
    assert (result.from_version, result.to_version) == ("v2", "1")
    alias = rest(mlflow_url, "/registered-models/alias", name="plain", alias="champion")["model_version"]
    assert alias["version"] == "1"


def test_a_champion_moved_in_the_mlflow_ui_wins(mlflow_url):
    seed(mlflow_url)
    reg = open_registry(mlflow_url)
    reg.split_to_last_known_good("fraud", 50, **WHO)
    token = reg.serving_token("fraud")
    requests.post(
        mlflow_url[7:] + API + "/registered-models/alias",
        timeout=10,
        json={"name": "fraud", "alias": "champion", "version": "1"},
    ).raise_for_status()
    assert reg.serving_token("fraud") != token  # model servers notice without a generation bump
    state = reg.state("fraud")
    assert state.active_version == "v1" and state.traffic == {"v1": 100.0}
    assert any("moved outside the registry" in p for p in reg.check("fraud"))
    with pytest.raises(ConflictError):
        reg.rollback("fraud", expected_active="v2", **WHO)


RUNBOOK = """
id: bad-release-test
title: Bad release (test)
match: ['incident_type="errors"']
group_by: [model]
owners: {incident_commander: ml-oncall}
severity:
  - {level: SEV2}
contain:
  - {id: rollback, action: rollback, to: last_known_good}
evidence: []
escalate: {after: 1h, to: ml-senior}
"""


def test_mlflow_stopped_during_an_action_fails_retries_and_escalates(tmp_path, prometheus_factory):
    server = start_mlflow_server(tmp_path / "mlflow")
    try:
        seed(server.registry_url)
    finally:
        server.stop()  # MLflow goes away before the incident arrives
    prom = prometheus_factory({"global": {"scrape_interval": "1s"}})
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "bad-release.yml").write_text(RUNBOOK)
    settings = make_settings(
        tmp_path / "data", runbooks, registry_url=server.registry_url, prometheus_url=prom.url
    )
    receiver = start_receiver(settings)
    try:
        body = notification(
            alert(alertname="ModelErrors", incident_type="errors", model="fraud"),
            group_key='{}:{model="fraud"}',
        )
        resp = requests.post(
            receiver.url + "/api/v1/alerts",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
        )
        assert resp.status_code == 200

        def timeline() -> list[dict[str, Any]] | None:
            r = requests.get(
                receiver.url + "/api/v1/incidents/1",
                timeout=5,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            entries = r.json()["timeline"] if r.status_code == 200 else []
            return entries if any(e["kind"] == "escalated" for e in entries) else None

        try:
            entries = wait_until(timeline, timeout=60, message="the failed rollback to escalate")
        except TimeoutError:
            r = requests.get(
                receiver.url + "/api/v1/incidents",
                timeout=5,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            r1 = requests.get(
                receiver.url + "/api/v1/incidents/1",
                timeout=5,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            raise AssertionError(f"{r.text[:2000]}\n{r1.text[:4000]}") from None
    finally:
        receiver.stop()
    text = json.dumps(entries)
    url = server.url
    actions = [e["data"] for e in entries if e["kind"] == "action"]
    failed = [a for a in actions if a.get("event") == "failed"]
    retried = [a for a in actions if a.get("event") == "attempt_failed"]
    assert len(failed) == 1 and len(retried) == 2, actions  # default policy: 2 retries
    assert f"MLflow at {url}" in failed[0]["error"] and "unreachable" in failed[0]["error"]
    escalated = [e for e in entries if e["kind"] == "escalated"]
    assert "rollback" in escalated[0]["message"] and f"MLflow at {url}" in escalated[0]["message"]
    assert not any(a.get("event") == "succeeded" for a in actions)
    assert "Bearer" not in text


def test_token_from_file_or_env_is_sent_and_never_in_errors(recording_server, tmp_path, monkeypatch):
    """A real local HTTP server stands in for an MLflow behind an auth proxy (it records the headers)."""
    sink = recording_server(fail_first=1, fail_status=502)
    token = tmp_path / "token"
    token.write_text("file-token-123\n")
    reg = open_registry("mlflow+" + sink.url, token_file=token)
    assert "file-token-123" not in repr(reg.backend) + repr(getattr(reg.backend, "rest", None))
    with pytest.raises(RegistryUnavailableError) as failed:
        reg.generation("m")
    assert f"MLflow at {sink.url} answered 502" in failed.value.message
    assert "file-token-123" not in failed.value.message
    reg.backend.generation("m")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "env-token-456")
    open_registry("mlflow+" + sink.url).backend.generation("m")
    auth = [r.headers.get("Authorization") for r in sink.requests]
    assert auth == ["Bearer file-token-123", "Bearer env-token-456"]  # (the failed 502 is not recorded)
    dead = open_registry("mlflow+http://127.0.0.1:9", token_file=token)
    with pytest.raises(RegistryUnavailableError, match=r"MLflow at http://127.0.0.1:9 is unreachable"):
        dead.state("m")
