"""The tests' MLflow: one real ``mlflow server`` per test session (it takes seconds to start), and a
per-test registry on it that is emptied afterwards (registered models deleted, the registry's experiments
renamed away and deleted), so every test starts from an empty MLflow Model Registry.

Nothing is mocked: this is ``mlflow server --backend-store-uri sqlite:///... --default-artifact-root ...``
from the ``mlflow`` extra on a loopback port (see :mod:`model_registry.mlflow_server`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from model_registry import Registry, open_registry
from model_registry.mlflow_server import LocalMLflowServer, start_mlflow_server

API = "/api/2.0/mlflow"


def empty_mlflow(url: str) -> None:
    """Delete every registered model and retire every experiment except the default one."""
    s = requests.Session()
    models = s.get(url + API + "/registered-models/search", params={"max_results": 1000}, timeout=10)
    for m in models.json().get("registered_models", []):
        s.delete(url + API + "/registered-models/delete", json={"name": m["name"]}, timeout=10)
    exps = s.post(
        url + API + "/experiments/search", json={"max_results": 1000, "view_type": "ACTIVE_ONLY"}, timeout=10
    )
    for e in exps.json().get("experiments", []):
        if e["experiment_id"] == "0":
            continue
        s.post(
            url + API + "/experiments/update",
            timeout=10,
            json={"experiment_id": e["experiment_id"], "new_name": f"retired-{uuid.uuid4().hex}"},
        )
        s.post(url + API + "/experiments/delete", json={"experiment_id": e["experiment_id"]}, timeout=10)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMLflowServer]:
    server = start_mlflow_server(Path(tmp_path_factory.mktemp("mlflow-server")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_url(mlflow_server: LocalMLflowServer) -> Iterator[str]:
    """``mlflow+http://127.0.0.1:PORT`` of the shared server, emptied before and after the test."""
    if not mlflow_server.alive():
        pytest.fail(f"the shared mlflow server died:\n{mlflow_server.log_tail()}")
    empty_mlflow(mlflow_server.url)
    yield mlflow_server.registry_url
    empty_mlflow(mlflow_server.url)


@pytest.fixture
def mlflow_registry(mlflow_url: str) -> Registry:
    return open_registry(mlflow_url)
