"""The demo model server on a real socket (waitress), a real SQLite registry and a real Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from model_registry import open_registry
from model_server.demo import bootstrap, load_data
from model_server.server import ServerConfig
from model_server.web import BackgroundServer, serve_background
from tests.support.realparts import wait_until

MODEL = "cancer"
TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[BackgroundServer, Any]]:
    db = tmp_path / "registry.db"
    bootstrap(db, MODEL, tmp_path / "artifacts")
    server = serve_background(ServerConfig(str(db), MODEL, port=0, admin_token=TOKEN, poll_interval=0.2))
    try:
        yield server, open_registry(str(db))
    finally:
        server.stop()


def rows(n: int, shift: dict[int, float] | None = None) -> list[dict[str, float]]:
    data = load_data()
    X = np.concatenate([data.X_train, data.X_val])
    rng = np.random.default_rng(0)
    picked = X[rng.integers(0, len(X), size=n)].copy()
    for col, k in (shift or {}).items():
        picked[:, col] += k * X[:, col].std()
    return [dict(zip(data.feature_names, r.tolist(), strict=True)) for r in picked]


def post_all(url: str, features: list[dict[str, float]]) -> list[requests.Response]:
    with requests.Session() as s:
        return [s.post(url + "/predict", json={"features": f}, timeout=5) for f in features]


def generate(url: str) -> dict[str, Any]:
    return dict(requests.post(url + "/generate", json={"prompt": "hi"}, timeout=5).json())


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = requests.get(url + "/metrics", timeout=5).text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def by(
    found: dict[str, list[tuple[dict[str, str], float]]], name: str, key: str, **labels: str
) -> dict[str, float]:
    return {lab[key]: v for lab, v in found.get(name, []) if all(lab.get(k) == x for k, x in labels.items())}


def test_follows_a_rollback_within_two_seconds(served: tuple[BackgroundServer, Any]) -> None:
    server, reg = served
    reg.promote(MODEL, "v2", actor="test", reason="release v2")
    wait_until(
        lambda: post_all(server.url, rows(1))[0].json()["version"] == "v2", timeout=5, message="v2 serving"
    )
    reg.rollback(MODEL, actor="test", reason="bad release", expected_active="v2")
    changed = time.monotonic()
    feature = rows(1)[0]
    while True:
        resp = requests.post(server.url + "/predict", json={"features": feature}, timeout=5)
        version = resp.json()["version"]
        elapsed = time.monotonic() - changed
        if version == "v1" or elapsed > 5:
            break
        time.sleep(0.02)
    assert version == "v1"
    assert elapsed < 2.0, f"took {elapsed:.2f}s to follow the rollback"
    roles = by(scrape(server.url), "model_serving_info", "version")
    assert roles == {"v1": 1.0}


def test_real_prometheus_scrapes_psi(
    served: tuple[BackgroundServer, Any], prometheus_factory: Callable[..., Any]
) -> None:
    server, _ = served
    assert all(r.status_code == 200 for r in post_all(server.url, rows(150)))
    target = server.url.removeprefix("http://")
    prom = prometheus_factory(
        {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "model-server", "static_configs": [{"targets": [target]}]}],
        }
    )

    def psi_series() -> list[Any]:
        query = f'model_feature_psi{{model="{MODEL}"}}'
        resp = requests.get(prom.url + "/api/v1/query", params={"query": query}, timeout=5).json()
        return list(resp["data"]["result"])

    result = wait_until(psi_series, timeout=20, message="model_feature_psi in Prometheus")
    assert len(result) == 30
    assert {r["metric"]["version"] for r in result} == {"v1"}
    assert all(float(r["value"][1]) >= 0 for r in result)


def test_drift_raises_psi_of_the_shifted_feature_only(served: tuple[BackgroundServer, Any]) -> None:
    server, _ = served
    post_all(server.url, rows(300))
    before = by(scrape(server.url), "model_feature_psi", "feature")
    post_all(server.url, rows(700, shift={0: 3.0}))  # mean_radius + 3 sd; window is 1000
    after = by(scrape(server.url), "model_feature_psi", "feature")
    assert before["mean_radius"] < 0.2 < after["mean_radius"]
    others = {f: v for f, v in after.items() if f != "mean_radius"}
    assert max(abs(others[f] - before[f]) for f in others) < 0.1, others


def test_error_fault_raises_only_error_outcome_and_clears(served: tuple[BackgroundServer, Any]) -> None:
    server, _ = served
    assert requests.post(server.url + "/admin/faults", json={"error_rate": 1.0}, timeout=5).status_code == 401
    resp = requests.post(server.url + "/admin/faults", json={"error_rate": 1.0}, headers=AUTH, timeout=5)
    assert resp.status_code == 200 and resp.json()["faults"]["*"]["error_rate"] == 1.0
    before = scrape(server.url)
    statuses = [r.status_code for r in post_all(server.url, rows(20))]
    after = scrape(server.url)
    assert statuses == [500] * 20
    outcome_before = by(before, "model_requests_total", "outcome", version="v1")
    outcome_after = by(after, "model_requests_total", "outcome", version="v1")
    assert outcome_after["error"] - outcome_before["error"] == 20
    assert outcome_after["ok"] == outcome_before["ok"]
    problems = "model_input_problems_total"
    assert by(after, problems, "feature") == by(before, problems, "feature")
    assert requests.delete(server.url + "/admin/faults", headers=AUTH, timeout=5).json() == {"faults": {}}
    assert all(r.status_code == 200 for r in post_all(server.url, rows(5)))


def test_version_scoped_fault_hits_only_that_version(served: tuple[BackgroundServer, Any]) -> None:
    server, reg = served
    requests.post(
        server.url + "/admin/faults", json={"version": "v2", "error_rate": 1.0}, headers=AUTH, timeout=5
    ).raise_for_status()
    reg.split(MODEL, {"v1": 50, "v2": 50}, actor="test", reason="canary")
    wait_until(
        lambda: requests.get(server.url + "/state", timeout=5).json()["traffic"].get("v2") == 50,
        timeout=5,
        message="split applied",
    )
    responses = post_all(server.url, rows(60))
    served_versions = {r.json()["version"] for r in responses if r.status_code == 200}
    assert served_versions == {"v1"}
    assert 10 < sum(r.status_code == 500 for r in responses) < 50
    found = scrape(server.url)
    assert by(found, "model_requests_total", "outcome", version="v1")["error"] == 0
    assert by(found, "model_requests_total", "outcome", version="v2")["ok"] == 0
    assert by(found, "model_serving_info", "role") == {"active": 1.0, "split": 1.0}


def test_nulls_and_corruption_change_their_metrics(served: tuple[BackgroundServer, Any]) -> None:
    server, _ = served
    feature = rows(1)
    clean = post_all(server.url, feature)[0].json()
    requests.post(
        server.url + "/admin/faults", json={"null_rate": 1.0, "corrupt_rate": 1.0}, headers=AUTH, timeout=5
    ).raise_for_status()
    faulty = post_all(server.url, feature * 10)
    assert all(r.status_code == 200 and r.json()["input_problems"] for r in faulty)
    nulls = by(scrape(server.url), "model_input_problems_total", "feature", kind="null")
    assert sum(nulls.values()) == 10
    assert all(abs(r.json()["score"] - (1 - clean["score"])) < 0.2 for r in faulty)


def test_fallback_mode_and_guardrail_follow_the_registry(served: tuple[BackgroundServer, Any]) -> None:
    server, reg = served
    requests.post(
        server.url + "/admin/faults", json={"toxic_rate": 1.0}, headers=AUTH, timeout=5
    ).raise_for_status()
    replies = [generate(server.url) for _ in range(5)]
    assert not any(r["blocked"] for r in replies)
    reg.set_guardrail(MODEL, 1, actor="test", reason="toxicity")
    reg.set_mode(MODEL, "fallback", actor="test", reason="feature store outage")
    wait_until(
        lambda: requests.get(server.url + "/state", timeout=5).json()["guardrail_level"] == 1,
        timeout=5,
        message="guardrail applied",
    )
    replies = [generate(server.url) for _ in range(5)]
    assert all(r["blocked"] for r in replies)
    prediction = post_all(server.url, rows(1))[0].json()
    assert prediction["mode"] == "fallback"
    found = scrape(server.url)
    assert by(found, "model_toxic_outputs_total", "version") == {"v1": 5.0}
    assert by(found, "model_blocked_outputs_total", "version") == {"v1": 5.0}
    assert by(found, "model_outputs_total", "version") == {"v1": 10.0}
    assert by(found, "model_guardrail_level", "version") == {"v1": 1.0}
    assert by(found, "model_serving_info", "mode") == {"fallback": 1.0}


def generate_with_tools(url: str, tools: Any) -> requests.Response:
    return requests.post(url + "/generate", json={"prompt": "look this up", "tools": tools}, timeout=5)


def test_risky_tools_are_refused_while_the_registry_blocks_them(served: tuple[BackgroundServer, Any]) -> None:
    server, reg = served
    tools = ["web_browse", "search", "Code-Exec", "search", "my_plugin"]
    reply = generate_with_tools(server.url, tools).json()
    assert reply["tools_blocked"] is False
    assert reply["tools_allowed"] == ["web_browse", "search", "Code-Exec", "my_plugin"]  # distinct, in order
    assert reply["tools_refused"] == []
    assert generate(server.url)["tools_allowed"] == []  # no tools asked: empty lists, nothing counted

    reg.set_tools_blocked(MODEL, True, actor="test", reason="INC-9 toxic output")
    wait_until(
        lambda: requests.get(server.url + "/state", timeout=5).json()["tools_blocked"] is True,
        timeout=5,
        message="tools_blocked applied",
    )
    for _ in range(3):
        resp = generate_with_tools(server.url, tools)
        assert resp.status_code == 200
        reply = resp.json()
        assert reply["tools_blocked"] is True
        assert reply["tools_refused"] == ["web_browse", "Code-Exec"]
        assert reply["tools_allowed"] == ["search", "my_plugin"]
    reply = generate_with_tools(server.url, ["send_email", "file_write", "calculator"]).json()
    assert (reply["tools_refused"], reply["tools_allowed"]) == (["send_email", "file_write"], ["calculator"])

    found = scrape(server.url)
    assert by(found, "model_tools_blocked", "version") == {"v1": 1.0}
    refused = by(found, "model_tool_calls_total", "tool", outcome="refused", version="v1")
    allowed = by(found, "model_tool_calls_total", "tool", outcome="allowed", version="v1")
    assert refused == {"web_browse": 3.0, "code_exec": 3.0, "send_email": 1.0, "file_write": 1.0}
    # an unknown name is counted as _other: a client cannot grow the label set
    assert allowed == {"web_browse": 1.0, "code_exec": 1.0, "search": 4.0, "_other": 4.0, "calculator": 1.0}

    reg.set_tools_blocked(MODEL, False, actor="test", reason="INC-9 recovered")
    wait_until(
        lambda: requests.get(server.url + "/state", timeout=5).json()["tools_blocked"] is False,
        timeout=5,
        message="tools allowed again",
    )
    reply = generate_with_tools(server.url, ["code_exec"]).json()
    assert (reply["tools_allowed"], reply["tools_refused"]) == (["code_exec"], [])
    assert by(scrape(server.url), "model_tools_blocked", "version") == {"v1": 0.0}


def test_malformed_tools_get_400_and_count_nothing(served: tuple[BackgroundServer, Any]) -> None:
    server, _ = served
    resp = generate_with_tools(server.url, "web_browse")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "'tools' must be a list of tool names, got str"
    resp = generate_with_tools(server.url, ["search", 7, "", "x" * 65, "rm -rf /"])
    assert resp.status_code == 400 and resp.json()["error"]["message"] == "invalid 'tools'"
    problems = resp.json()["error"]["problems"]
    assert [p.split(":")[0] for p in problems] == ["tools[1]", "tools[2]", "tools[3]", "tools[4]"]
    assert "expected a tool name of 1-64 letters, digits, '_' or '-', got 7" in problems[0]
    resp = generate_with_tools(server.url, [f"t{i}" for i in range(33)])
    assert resp.status_code == 400 and "at most 32 tools, got 33" in resp.json()["error"]["message"]
    found = scrape(server.url)
    assert "model_tool_calls_total" not in found
    assert by(found, "model_outputs_total", "version") == {"v1": 0.0}  # refused before generating


def test_bad_requests_get_clear_errors(served: tuple[BackgroundServer, Any]) -> None:
    server, _ = served
    resp = requests.post(server.url + "/predict", data=b"not json", timeout=5)
    assert resp.status_code == 400 and "JSON" in resp.json()["error"]["message"]
    bad = {**rows(1)[0], "mean_radius": "big"}
    resp = requests.post(server.url + "/predict", json={"features": bad}, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["error"]["problems"] == ["feature 'mean_radius' is not a number"]
    resp = requests.post(server.url + "/feedback", json={"request_id": "x", "label": 3}, timeout=5)
    assert resp.status_code == 400 and "label" in resp.json()["error"]["problems"][0]
    assert (
        requests.post(
            server.url + "/feedback", json={"request_id": "nope", "label": 1}, timeout=5
        ).status_code
        == 404
    )
    resp = requests.post(
        server.url + "/admin/faults", json={"latency_seconds": -1, "bogus": 1}, headers=AUTH, timeout=5
    )
    assert resp.status_code == 400 and len(resp.json()["error"]["problems"]) == 2
    assert requests.get(server.url + "/healthz", timeout=5).json()["active_version"] == "v1"


def test_psi_window_sized_to_traffic_forgets_a_withdrawn_drift(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    bootstrap(db, MODEL, tmp_path / "artifacts")
    server = serve_background(
        ServerConfig(str(db), MODEL, port=0, poll_interval=0.2, psi_window=200, psi_min_samples=100)
    )
    try:
        post_all(server.url, rows(50))
        assert by(scrape(server.url), "model_feature_psi", "feature") == {}, "exported below min samples"
        post_all(server.url, rows(200, shift={0: 3.0}))
        assert by(scrape(server.url), "model_feature_psi", "feature")["mean_radius"] > 0.2
        post_all(server.url, rows(200))  # the drift withdrawn: 200 healthy inputs refill the whole window
        assert by(scrape(server.url), "model_feature_psi", "feature")["mean_radius"] < 0.2
    finally:
        server.stop()


def test_cli_refuses_min_samples_above_the_window(capsys: pytest.CaptureFixture[str]) -> None:
    from model_server.cli import main

    code = main(
        [
            "serve",
            "--registry-db",
            "unused.db",
            "--model",
            MODEL,
            "--psi-window",
            "50",
            "--psi-min-samples",
            "100",
        ]
    )
    assert code == 2
    assert "--psi-min-samples <= --psi-window" in capsys.readouterr().err
