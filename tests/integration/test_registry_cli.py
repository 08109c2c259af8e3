"""The ``model-registry`` CLI on a real registry file: in-process ``main()`` and the installed script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_registry import compute_baseline, open_registry
from model_registry.cli import main

REPO = Path(__file__).resolve().parents[2]


class CLI:
    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(["--db", str(self.db), "--actor", "alice", *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> object:
        code, out, err = self("--json", *args)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    return CLI(tmp_path / "registry.db", capsys)


def setup_two_versions(cli: CLI) -> None:
    assert cli("register", "fraud", "v1", "--artifact", "/m/v1", "--healthy", "--reason", "initial")[0] == 0
    assert cli("register", "fraud", "v2", "--artifact", "/m/v2", "--reason", "retrain")[0] == 0
    assert cli("promote", "fraud", "v2", "--reason", "release 42")[0] == 0


def test_register_with_metadata_and_baseline_file(cli: CLI, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    X, scores, y = rng.normal(size=(100, 2)), rng.uniform(size=100), rng.integers(0, 2, 100)
    baseline = compute_baseline(X, scores, y, ["a", "b"])
    (tmp_path / "baseline.json").write_text(json.dumps(baseline.to_dict()))
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "classifier", "feature_names": ["a", "b"]}))
    info = cli.json(
        "register",
        "fraud",
        "v1",
        "--artifact",
        "/m/v1",
        "--metadata",
        f"@{tmp_path / 'meta.json'}",
        "--baseline-file",
        str(tmp_path / "baseline.json"),
        "--healthy",
        "--reason",
        "initial",
    )
    assert isinstance(info, dict)
    assert info["served_healthy"] is True and info["metadata"]["kind"] == "classifier"
    stored = open_registry(cli.db).version("fraud", "v1")
    assert stored.baseline == baseline
    shown = cli.json("show", "fraud", "v1")
    assert isinstance(shown, dict) and shown["baseline"]["auc"] == pytest.approx(baseline.auc)


def test_promote_split_mode_guardrail_and_rollback(cli: CLI) -> None:
    setup_two_versions(cli)
    state = cli.json("split", "fraud", "v1=30", "v2=70", "--reason", "canary")
    assert isinstance(state, dict) and state["traffic"] == {"v1": 30.0, "v2": 70.0}
    state = cli.json("split", "fraud", "--to-last-known-good", "50", "--reason", "INC-3 drift")
    assert isinstance(state, dict) and state["traffic"] == {"v1": 50.0, "v2": 50.0}
    assert cli.json("mode", "fraud", "fallback", "--reason", "INC-3")["mode"] == "fallback"  # type: ignore[index]
    assert cli.json("guardrail", "fraud", "2", "--reason", "INC-3")["guardrail_level"] == 2  # type: ignore[index]
    result = cli.json("rollback", "fraud", "--expected-active", "v2", "--reason", "INC-3")
    assert isinstance(result, dict) and (result["from_version"], result["to_version"]) == ("v2", "v1")
    code, out, _ = cli("show", "fraud")
    assert code == 0
    assert "active version:  v1" in out and "traffic:         v1=100%" in out and "unhealthy" in out


def test_tools_block_and_allow(cli: CLI) -> None:
    setup_two_versions(cli)
    code, out, _ = cli("show", "fraud")
    assert code == 0 and "risky tools:     allowed" in out
    state = cli.json("tools", "fraud", "block", "--reason", "INC-9 toxic output")
    assert isinstance(state, dict) and state["tools_blocked"] is True
    assert open_registry(cli.db).state("fraud").tools_blocked is True
    code, out, _ = cli("show", "fraud")
    assert code == 0 and "risky tools:     blocked" in out
    shown = cli.json("show", "fraud")
    assert isinstance(shown, dict) and shown["tools_blocked"] is True
    code, out, _ = cli("list")
    assert code == 0 and "tools=blocked" in out
    code, out, _ = cli("history", "fraud", "--limit", "1")
    assert code == 0 and "set_tools_blocked by alice: INC-9 toxic output" in out
    assert "tools_blocked: False -> True" in out
    code, out, _ = cli("tools", "fraud", "allow", "--reason", "INC-9 recovered")
    assert code == 0 and "risky tools:     allowed" in out
    assert open_registry(cli.db).state("fraud").tools_blocked is False
    before = open_registry(cli.db).state("fraud").summary()
    with pytest.raises(SystemExit) as exc:
        cli("tools", "fraud", "maybe", "--reason", "x")
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli("tools", "fraud", "block")  # --reason is required
    assert exc.value.code == 2
    code, _, err = cli("tools", "nope", "block", "--reason", "x")
    assert code == 1 and "unknown model 'nope'" in err
    assert open_registry(cli.db).state("fraud").summary() == before


def test_history_and_list(cli: CLI) -> None:
    setup_two_versions(cli)
    entries = cli.json("history", "fraud", "--limit", "2")
    assert isinstance(entries, list)
    assert [e["action"] for e in entries] == ["promote", "register"]
    assert entries[0]["actor"] == "alice" and entries[0]["reason"] == "release 42"
    code, out, _ = cli("history", "fraud")
    assert code == 0 and "promote by alice: release 42" in out and "active_version: None -> 'v2'" in out
    listed = cli.json("list")
    assert isinstance(listed, list) and listed[0]["active_version"] == "v2"
    assert listed[0]["last_known_good"] == "v1"
    assert cli("check")[0] == 0


def test_options_may_follow_the_subcommand(cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    setup_two_versions(cli)
    code = main(
        ["mode", "fraud", "fallback", "--reason", "x", "--db", str(cli.db), "--actor", "bob", "--json"]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["mode"] == "fallback"
    assert open_registry(cli.db).history("fraud", 1)[0].actor == "bob"


def test_refusals_exit_1_and_change_nothing(cli: CLI) -> None:
    assert cli("register", "fraud", "v1", "--artifact", "/m/v1", "--reason", "initial")[0] == 0
    assert cli("promote", "fraud", "v1", "--reason", "first")[0] == 0
    before = open_registry(cli.db).state("fraud").summary()
    code, _, err = cli("rollback", "fraud", "--reason", "INC-1")
    assert code == 1
    assert "'v1' is the only registered version" in err and "Nothing was changed" in err
    code, _, err = cli("rollback", "fraud", "--expected-active", "v9", "--reason", "INC-1")
    assert code == 1 and "not the expected 'v9'" in err
    code, _, err = cli("promote", "nope", "v1", "--reason", "x")
    assert code == 1 and "unknown model 'nope'" in err
    assert open_registry(cli.db).state("fraud").summary() == before


def test_bad_input_exits_2_with_a_clear_message(cli: CLI) -> None:
    setup_two_versions(cli)
    before = open_registry(cli.db).state("fraud").summary()
    code, _, err = cli("register", "fraud", "v3", "--artifact", "/m", "--metadata", "{bad", "--reason", "x")
    assert code == 2 and "--metadata: invalid JSON" in err
    code, _, err = cli(
        "register", "fraud", "v3", "--artifact", "/m", "--metadata", '{"kind": "svm"}', "--reason", "x"
    )
    assert code == 2 and "metadata.kind must be one of classifier, llm" in err
    code, _, err = cli("split", "fraud", "v1:50", "v2=50", "--reason", "x")
    assert code == 2 and "expected VERSION=PERCENT, got 'v1:50'" in err
    code, _, err = cli("split", "fraud", "v1=50", "v2=40", "--reason", "x")
    assert code == 2 and "must sum to 100, got 90" in err
    code, _, err = cli("--json", "split", "fraud", "v1=50", "v2=40", "--reason", "x")
    assert code == 2 and json.loads(err)["error"]["type"] == "RegistryError"
    with pytest.raises(SystemExit) as exc:
        cli("promote", "fraud", "v1")  # --reason is required
    assert exc.value.code == 2
    assert open_registry(cli.db).state("fraud").summary() == before


def test_missing_db_is_a_usage_error_and_read_only_commands_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODEL_REGISTRY_DB", raising=False)
    monkeypatch.delenv("MODEL_REGISTRY_URL", raising=False)
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "pass --db PATH or --registry-url" in err and "MODEL_REGISTRY_DB" in err
    missing = tmp_path / "missing.db"
    assert main(["--db", str(missing), "show", "fraud"]) == 2
    assert "no model registry at" in capsys.readouterr().err
    assert not missing.exists()


def test_installed_console_script_reads_the_db_from_the_environment(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("model-registry")
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    env = {**os.environ, "MODEL_REGISTRY_DB": str(tmp_path / "env.db"), "USER": "carol"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
        )

    assert run("register", "m", "v1", "--artifact", "/a", "--reason", "r").returncode == 0
    done = run("--json", "promote", "m", "v1", "--reason", "go")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["active_version"] == "v1"
    assert open_registry(tmp_path / "env.db").history("m", 1)[0].actor == "carol"


def test_cli_on_mlflow_with_a_token_file_that_is_never_printed(mlflow_url, tmp_path) -> None:
    import subprocess
    import sys

    token = tmp_path / "token"
    token.write_text("very-secret-token\n")
    base = [
        sys.executable,
        "-m",
        "model_registry.cli",
        "--registry-url",
        mlflow_url,
        "--registry-token-file",
        str(token),
        "--actor",
        "alice",
    ]
    runs = [
        subprocess.run(base + args, capture_output=True, text=True, timeout=60)
        for args in (
            ["register", "fraud", "v1", "--artifact", str(token.parent), "--healthy", "--reason", "initial"],
            ["promote", "fraud", "v1", "--reason", "first"],
            ["--json", "show", "fraud"],
            ["rollback", "fraud", "--reason", "INC-1"],
        )
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 1], [r.stderr for r in runs]
    assert json.loads(runs[2].stdout)["active_version"] == "v1"
    assert "cannot roll back" in runs[3].stderr and len(runs[3].stderr.strip().splitlines()) >= 1
    assert all("very-secret-token" not in r.stdout + r.stderr for r in runs)
    both = subprocess.run(
        [*base, "--db", str(tmp_path / "x.db"), "list"], capture_output=True, text=True, timeout=60
    )
    assert both.returncode == 2 and "not both" in both.stderr
