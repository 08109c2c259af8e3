"""docker-compose.yml, checked statically: no Docker engine runs here, but Debian's docker-compose 1.29
validates the file, and every bind-mounted path must exist in the repo (a typo would only show at `up`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _bind_mounts() -> list[tuple[str, str]]:
    mounts = []
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                mounts.append((name, source))
    return mounts


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose not installed (scripts/setup.sh installs Debian's docker-compose)",
)
def test_docker_compose_config_is_valid() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_bind_mounted_path_exists() -> None:
    mounts = _bind_mounts()
    assert mounts, "expected the stack to mount the repo's config files"
    missing = [f"{service}: {source}" for service, source in mounts if not (REPO / source).resolve().exists()]
    assert not missing, f"bind-mounted paths missing from the repo: {missing}"


def test_stack_uses_the_repos_config_files_and_pinned_images() -> None:
    services = _compose()["services"]
    assert services["prometheus"]["image"] == "prom/prometheus:v2.42.0"
    assert services["alertmanager"]["image"] == "prom/alertmanager:v0.25.0"
    sources = {source for _, source in _bind_mounts()}
    for path in (
        "./prometheus/prometheus.yml",
        "./alertmanager/alertmanager.yml",
        "./alert_rules",
        "./grafana/provisioning",
    ):
        assert path in sources, f"{path} is not mounted"
    for name in (
        "receiver-1",
        "receiver-2",
        "model-server",
        "traffic",
        "grafana",
        "prometheus",
        "alertmanager",
        "alertmanager-2",
        "postgres",
    ):
        assert name in services, f"service {name} missing"


def test_webhook_token_is_shared_through_a_volume_not_the_repo() -> None:
    doc = _compose()
    services = doc["services"]
    am_cfg = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    credential_files = {
        hook["http_config"]["authorization"]["credentials_file"]
        for receiver in am_cfg["receivers"]
        for hook in receiver.get("webhook_configs", [])
    }
    assert credential_files == {"/etc/alertmanager/secrets/receiver-token"}
    assert "secrets:/etc/alertmanager/secrets:ro" in services["alertmanager"]["volumes"]
    for replica in ("receiver-1", "receiver-2"):
        assert any(str(v).startswith("secrets:/secrets") for v in services[replica]["volumes"])
        assert "--webhook-token-file=/secrets/receiver-token" in services[replica]["command"]
    assert "secrets" in doc["volumes"]
    text = COMPOSE.read_text().lower()
    assert "token_urlsafe" in text  # generated at `up`, never a literal in the file


def test_services_have_health_checks() -> None:
    services = _compose()["services"]
    for name in (
        "prometheus",
        "alertmanager",
        "alertmanager-2",
        "grafana",
        "receiver-1",
        "receiver-2",
        "model-server",
        "chat-sink",
        "postgres",
    ):
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_the_ha_shape_two_peers_gossip_two_replicas_share_postgres() -> None:
    services = _compose()["services"]
    peers = {name: services[name]["command"] for name in ("alertmanager", "alertmanager-2")}
    assert "--cluster.peer=alertmanager-2:9094" in peers["alertmanager"]
    assert "--cluster.peer=alertmanager:9094" in peers["alertmanager-2"]
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    targets = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == ["alertmanager-2:9093", "alertmanager:9093"]  # alerts go to both peers
    for replica in ("receiver-1", "receiver-2"):
        service = services[replica]
        assert "receiver" in service["networks"]["default"]["aliases"]  # the webhook URL reaches either
        assert service["environment"]["RECEIVER_REPLICA"] == replica
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    init = " ".join(services["init-secrets"]["command"])
    assert "database_url: postgresql://receiver@postgres:5432/receiver" in init
    assert "database_password_file: /secrets/postgres-password" in init  # the password only in a file
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/secrets/postgres-password"


def test_optional_mlflow_service_and_its_override() -> None:
    services = _compose()["services"]
    mlflow = services["mlflow"]
    assert mlflow["profiles"] == ["mlflow"]  # optional: `up` without the profile does not start it
    command = " ".join(mlflow["command"])
    assert "--backend-store-uri sqlite:////mlflow/mlflow.db" in command and "healthcheck" in mlflow
    override = yaml.safe_load((REPO / "docker-compose.mlflow.yml").read_text())["services"]
    for replica in ("receiver-1", "receiver-2"):
        assert override[replica]["environment"]["RECEIVER_REGISTRY_URL"] == "mlflow+http://mlflow:5000"
    assert "--registry-url mlflow+http://mlflow:5000" in " ".join(override["model-server"]["command"])
    if shutil.which("docker-compose"):
        result = subprocess.run(
            [
                "docker-compose",
                "--profile",
                "mlflow",
                "-f",
                str(COMPOSE),
                "-f",
                str(REPO / "docker-compose.mlflow.yml"),
                "config",
                "-q",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


def test_dockerfile_receiver_target_has_no_ml_stack_and_healthchecks() -> None:
    text = (REPO / "Dockerfile").read_text()
    blocks = text.split("\nFROM ")[1:]
    stages = {block.split()[2]: block for block in blocks if " AS " in block.split("\n")[0]}
    assert {"base", "receiver", "model-server"} <= set(stages)
    assert "pip install '.[postgres]'" in stages["receiver"]  # the receiver and its PostgreSQL driver only
    assert "[model-server" not in stages["receiver"] and "mlflow" not in stages["receiver"].split("HEALTH")[0]
    assert "'.[model-server,mlflow,postgres]'" in stages["model-server"]
    assert "HEALTHCHECK" in stages["receiver"] and "HEALTHCHECK" in stages["model-server"]
