"""Packaging: ``pip install .`` gives the receiver with only what it imports. The wheel's required
dependencies carry no ML stack (numpy, scikit-learn, joblib, mlflow are extras), the receiver and the
registry's containment path import with the ML stack made unimportable, ``receiver --version`` works,
and the receiver exports ``receiver_build_info``."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import requests

from receiver.version import version

REPO = Path(__file__).resolve().parents[2]
ML_STACK = {"numpy", "scikit-learn", "sklearn", "joblib", "mlflow", "scipy", "pandas"}

_BLOCKED = """
import sys
class Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"numpy", "sklearn", "joblib", "mlflow", "scipy", "pandas"}:
            raise ImportError(f"{name} is blocked: the receiver must not need it")
sys.meta_path.insert(0, Block())
import receiver.app, receiver.cli, receiver.response_runtime, receiver.commands.serve
from receiver.actions.registry import default_registry
from model_registry import open_registry, Baseline
import model_registry.cli, model_registry.mlflow_backend
default_registry()
reg = open_registry(sys.argv[1])
reg.register("m", "v1", artifact_path="x", baseline=None, actor="t", reason="r", healthy=True)
reg.register("m", "v2", artifact_path="y", baseline=None, actor="t", reason="r")
reg.promote("m", "v2", actor="t", reason="r")
print(reg.rollback("m", actor="t", reason="r").to_version)
"""


def test_wheel_requires_no_ml_stack(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("ml_incident_runbooks-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(name))
    requires = meta.get_all("Requires-Dist") or []
    required = [r for r in requires if "extra ==" not in r]
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in required}
    assert names and not names & ML_STACK, required
    assert {"flask", "requests", "prometheus-client"} <= names
    extras = {e: [r for r in requires if f'extra == "{e}"' in r] for e in ("model-server", "mlflow", "test")}
    assert any(r.startswith("numpy") for r in extras["model-server"])
    assert any(r.startswith("scikit-learn") for r in extras["model-server"])
    assert any(r.startswith("joblib") for r in extras["model-server"])
    assert any(r.startswith("mlflow") for r in extras["mlflow"])
    assert any("model-server" in r and "mlflow" in r for r in extras["test"])


def test_the_receiver_imports_and_rolls_back_without_the_ml_stack(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BLOCKED, str(tmp_path / "r.db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "v1"


def test_receiver_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == f"receiver {version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version())


def test_build_info_metric(tmp_path: Path) -> None:
    from tests.support.receiver_server import make_settings, start_receiver

    receiver = start_receiver(make_settings(tmp_path / "data", REPO / "runbooks"))
    try:
        text = requests.get(receiver.url + "/metrics", timeout=5).text
    finally:
        receiver.stop()
    line = next(ln for ln in text.splitlines() if ln.startswith("receiver_build_info{"))
    assert f'version="{version()}"' in line and line.endswith(" 1.0")
