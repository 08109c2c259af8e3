"""Start and stop the native drill stack: the real binaries and services on free loopback ports.

:class:`Stack` owns a work directory (a temp dir unless given) holding everything it creates: random
tokens (mode 0600), the registry DB bootstrapped with the demo v1 (good) and v2 (worse) per model, the
time-compressed Prometheus/Alertmanager configs from :func:`receiver.rulegen.render_drill_configs`,
time-compressed runbooks, the receiver's config file, data dirs and one log per process. With
``registry="mlflow"`` the registry is a real ``mlflow server`` (SQLite backend store, local artifact root,
loopback) started first and stopped last; the receiver and the model servers then talk to it by URL.
Each child runs
in its own process group, so :meth:`Stack.stop` (always called from ``finally``) takes down anything it
spawned; it is idempotent and safe to call from a signal handler's unwinding. How a child is run lives
in :mod:`receiver.drill.processes`, the secrets and receiver configs it writes in
:mod:`receiver.drill.stackfiles`.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from receiver.drill.chatsink import ChatSink
from receiver.drill.processes import ManagedProcess, find_binary, free_port, spawn, wait_healthy
from receiver.drill.progress import Progress
from receiver.drill.runbooks import write_compressed_runbooks
from receiver.drill.stackfiles import second_peer_config, write_receiver_config, write_secret
from receiver.errors import DrillError, ReceiverError

__all__ = ["Stack", "StackError", "StackOptions"]

REPO_ROOT = Path(__file__).resolve().parents[2]


StackError = DrillError


#: The receiver's address in the shipped rules and runbooks (docker compose's service name).
COMPOSE_RECEIVER = "http://receiver:8080"


@dataclass(frozen=True)
class StackOptions:
    workdir: Path | None = None
    dry_run: bool = False
    factor: float | None = None
    repo_root: Path = REPO_ROOT
    worker_poll_interval: float = 0.2
    registry_poll_interval: float = 0.5
    #: the model servers' PSI window, sized to drill traffic (20 s at 20 req/s) instead of the production
    #: default of 1000 inputs; 400 keeps the healthy max-over-30-features PSI near 0.15, under 0.2
    psi_window: int = 400
    start_timeout: float = 60.0
    #: the production shape: a clustered Alertmanager pair, each peer posting to its own receiver replica,
    #: both replicas on one PostgreSQL (started here, in a temporary directory)
    ha: bool = False
    #: ``sqlite`` (one registry file) or ``mlflow`` (a local ``mlflow server``)
    registry: str = "sqlite"


@dataclass
class Stack:
    """The running stack for ``models`` (one demo model server per model, all on one registry DB)."""

    models: Sequence[str]
    options: StackOptions = field(default_factory=StackOptions)
    setup_promote: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.processes: dict[str, ManagedProcess] = {}
        self.sink: ChatSink | None = None
        self.server_urls: dict[str, str] = {}
        self.prometheus_url = ""
        self.alertmanager_url = ""
        self.receiver_url = ""
        self.receiver_settings: dict[str, Any] = {}
        self.replica_urls: list[str] = []
        self.alertmanager_urls: list[str] = []
        self.postgres: Any = None
        self.database_url: str | None = None
        self.dropped_settings: list[str] = []
        self._owns_workdir = self.options.workdir is None
        self.workdir = Path(self.options.workdir or tempfile.mkdtemp(prefix="receiver-drill-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir = self.workdir / "secrets"
        self.registry_db = self.workdir / "registry.db"
        self.registry_target = str(self.registry_db)
        self.mlflow_url = ""
        self.config_dir = self.workdir / "config"
        self.runbooks_dir = self.workdir / "runbooks"
        self.admin_token = ""
        self.model_server_token = ""
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self, progress: Progress | None = None) -> None:
        progress = progress or Progress(quiet=True)
        try:
            self._start(progress)
        except BaseException:
            self.stop()
            raise

    def _start(self, progress: Progress) -> None:
        from receiver.rulegen import DEFAULT_FACTOR, render_drill_configs

        factor = self.options.factor or DEFAULT_FACTOR
        self.factor = factor
        progress.stage("starting", f"work dir {self.workdir}")
        webhook_token = write_secret(self.secrets_dir / "webhook-token", secrets.token_urlsafe(32))
        self.admin_token = secrets.token_urlsafe(32)
        admin_token = write_secret(self.secrets_dir / "admin-token", self.admin_token)
        self.model_server_token = secrets.token_urlsafe(32)
        ms_token = write_secret(self.secrets_dir / "model-server-token", self.model_server_token)
        pager_key = write_secret(self.secrets_dir / "pager-routing-key", secrets.token_hex(16))

        self.sink = ChatSink()
        ports = {name: free_port() for name in ("prometheus", "alertmanager", "receiver")}
        self.prometheus_url = f"http://127.0.0.1:{ports['prometheus']}"
        self.alertmanager_url = f"http://127.0.0.1:{ports['alertmanager']}"
        self.receiver_url = f"http://127.0.0.1:{ports['receiver']}"
        self.replica_urls = [self.receiver_url]
        self.alertmanager_urls = [self.alertmanager_url]
        if self.options.ha:
            self.replica_urls.append(f"http://127.0.0.1:{free_port()}")
            self.alertmanager_urls.append(f"http://127.0.0.1:{free_port()}")
            progress.stage("starting PostgreSQL", "the replicas' shared store")
            from receiver.drill.postgres import start_postgres

            self.postgres = start_postgres()
            self.database_url = self.postgres.create_database("receiver")

        if self.options.registry == "mlflow":
            self._start_mlflow(progress)
        progress.stage("bootstrapping the registry", f"{len(self.models)} model(s), v1 good / v2 worse")
        self._bootstrap_registry()

        progress.stage("starting model servers")
        for model in self.models:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            self.server_urls[model] = url
            self._spawn(
                f"model-server-{model}",
                [
                    sys.executable,
                    "-m",
                    "model_server.cli",
                    "serve",
                    "--registry-url" if self.mlflow_url else "--registry-db",
                    self.registry_target,
                    "--model",
                    model,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--admin-token-file",
                    str(ms_token),
                    "--poll-interval",
                    str(self.options.registry_poll_interval),
                    "--threads",
                    "8",
                    "--psi-window",
                    str(self.options.psi_window),
                ],
                url,
            )

        self._wait_healthy(
            {f"model-server-{m}": (u + "/healthz", {}) for m, u in self.server_urls.items()}, progress
        )
        progress.stage("writing configs", f"time factor 1/{factor:g}")
        paths = render_drill_configs(
            self.config_dir,
            receiver_url=self.receiver_url + "/api/v1/alerts",
            model_server_targets={u.removeprefix("http://"): m for m, u in self.server_urls.items()},
            alertmanager_url=self.alertmanager_url,
            credentials_file=webhook_token,
            pager_url=f"{self.sink.url}/engine-pager",  # the engine's own pages, apart from its page actions
            pager_key_file=pager_key,
            factor=factor,
            repo_root=self.options.repo_root,
        )
        self.config_paths = paths
        alertmanager_configs = [paths.alertmanager]
        if self.options.ha:
            alertmanager_configs.append(second_peer_config(self, paths, webhook_token, pager_key, factor))
        from receiver.config import Settings

        scales_itself = "time_scale" in {f.name for f in dataclasses.fields(Settings)}
        write_compressed_runbooks(
            self.options.repo_root / "runbooks", self.runbooks_dir, factor, durations=not scales_itself
        )
        # runbook links in alerts and messages name the compose host; on this stack they are loopback
        for path in [paths.rules, *sorted(self.runbooks_dir.glob("*.yml"))]:
            text = path.read_text()
            if COMPOSE_RECEIVER in text:
                path.write_text(text.replace(COMPOSE_RECEIVER, self.receiver_url))
        receiver_configs = [
            write_receiver_config(self, webhook_token, admin_token, pager_key, url=url, replica=n)
            for n, url in enumerate(self.replica_urls, start=1)
        ]

        progress.stage("starting prometheus, alertmanager and the receiver")
        self._spawn(
            "prometheus",
            [
                find_binary("prometheus"),
                f"--config.file={paths.prometheus}",
                f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                "--web.enable-lifecycle",
                # alerts link back here ("Alert source" in messages) instead of to this host's name
                f"--web.external-url={self.prometheus_url}",
            ],
            self.prometheus_url,
            cwd=paths.prometheus.parent,
        )
        cluster = [f"127.0.0.1:{free_port()}" for _ in self.alertmanager_urls]
        checks: dict[str, tuple[str, dict[str, str]]] = {"prometheus": (self.prometheus_url + "/-/ready", {})}
        for n, (url, config) in enumerate(zip(self.alertmanager_urls, alertmanager_configs, strict=True)):
            name = "alertmanager" if n == 0 else f"alertmanager-{n + 1}"
            peering = (
                [
                    f"--cluster.listen-address={cluster[n]}",
                    f"--cluster.peer={cluster[1 - n]}",
                    "--cluster.settle-timeout=2s",
                    "--cluster.peer-timeout=2s",
                ]
                if len(cluster) == 2
                else ["--cluster.listen-address="]
            )
            self._spawn(
                name,
                [
                    find_binary("prometheus-alertmanager", "alertmanager"),
                    f"--config.file={config}",
                    f"--storage.path={self.workdir / f'{name}-data'}",
                    f"--web.listen-address={url.removeprefix('http://')}",
                    *peering,
                    f"--web.external-url={url}",
                ],
                url,
            )
            checks[name] = (url + "/-/ready", {})
        for n, (url, config) in enumerate(zip(self.replica_urls, receiver_configs, strict=True)):
            name = "receiver" if n == 0 else f"receiver-{n + 1}"
            self._spawn(name, [sys.executable, "-m", "receiver.cli", "serve", "--config", str(config)], url)
            checks[name] = (url + "/readyz", {})
        self._wait_healthy(checks, progress)

    def _start_mlflow(self, progress: Progress) -> None:
        from model_registry.mlflow_server import mlflow_server_argv

        port = free_port()
        self.mlflow_url = f"http://127.0.0.1:{port}"
        self.registry_target = "mlflow+" + self.mlflow_url
        progress.stage("starting mlflow server", self.mlflow_url)
        try:
            argv = mlflow_server_argv(self.workdir / "mlflow", port)
        except ReceiverError as exc:
            raise StackError(exc.message) from None
        self._spawn("mlflow", argv, self.mlflow_url)
        timeout = max(self.options.start_timeout, 90.0)  # mlflow takes a while to import and migrate
        self._wait_healthy({"mlflow": (self.mlflow_url + "/health", {})}, progress, timeout)

    def _bootstrap_registry(self) -> None:
        from model_registry import open_registry
        from model_server.demo import bootstrap

        artifacts = self.workdir / "artifacts"
        for model in self.models:
            bootstrap(self.registry_target, model, artifacts, actor="drill-bootstrap")
        registry = open_registry(self.registry_target)
        for model, version in self.setup_promote.items():
            registry.promote(
                model,
                version,
                actor="drill-setup",
                reason=f"drill setup: {version} released before the fault",
            )

    def _spawn(self, name: str, argv: list[str], url: str, cwd: Path | None = None) -> ManagedProcess:
        managed = spawn(name, argv, url, logs_dir=self.workdir / "logs", cwd=cwd or self.options.repo_root)
        self.processes[name] = managed
        return managed

    def _wait_healthy(
        self,
        checks: Mapping[str, tuple[str, dict[str, str]]],
        progress: Progress,
        timeout: float | None = None,
    ) -> None:
        timeout = self.options.start_timeout if timeout is None else timeout
        wait_healthy(self.processes, checks, progress, timeout=timeout, logs_dir=self.workdir / "logs")

    def stop(self) -> None:
        """Stop every process this stack started (reverse order) and the sink; remove a temp work dir."""
        if self._stopped:
            return
        self._stopped = True
        for proc in reversed(list(self.processes.values())):
            try:
                proc.stop()
            except Exception:  # keep stopping the others
                proc.kill()
        if self.sink is not None:
            self.sink.stop()
        if self.postgres is not None:
            self.postgres.destroy()
        if self._owns_workdir and not os.environ.get("RECEIVER_DRILL_KEEP_WORKDIR"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- reads and faults ----------------------------------------------------------------------------
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def registry(self) -> Any:
        from model_registry import open_registry

        return open_registry(self.registry_target)

    def set_faults(self, model: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        resp = requests.post(
            self.server_urls[model] + "/admin/faults",
            json=dict(spec),
            timeout=5,
            headers={"Authorization": f"Bearer {self.model_server_token}"},
        )
        if resp.status_code != 200:
            raise StackError(f"fault injection on {model} answered {resp.status_code}: {resp.text[:300]}")
        body: dict[str, Any] = resp.json()
        return body

    def clear_faults(self, model: str) -> None:
        requests.delete(
            self.server_urls[model] + "/admin/faults",
            timeout=5,
            headers={"Authorization": f"Bearer {self.model_server_token}"},
        )

    def kill_server(self, model: str) -> None:
        self.processes[f"model-server-{model}"].kill()

    def server_state(self, model: str) -> dict[str, Any] | None:
        try:
            resp = requests.get(self.server_urls[model] + "/state", timeout=2)
        except requests.RequestException:
            return None
        return resp.json() if resp.status_code == 200 else None

    def urls(self) -> dict[str, str]:
        out = {
            "prometheus": self.prometheus_url,
            "alertmanager": self.alertmanager_url,
            "receiver": self.receiver_url,
            "chat sink": self.sink.url if self.sink else "",
        }
        for n, url in enumerate(self.alertmanager_urls[1:], start=2):
            out[f"alertmanager {n}"] = url
        for n, url in enumerate(self.replica_urls[1:], start=2):
            out[f"receiver {n}"] = url
        if self.postgres is not None:
            out["postgresql"] = self.postgres.url("receiver")
        out.update({f"model server {m}": u for m, u in self.server_urls.items()})
        if self.mlflow_url:
            out["mlflow"] = self.mlflow_url
        return out

    def check_processes(self, expected_dead: Callable[[str], bool] = lambda _n: False) -> list[str]:
        """Names of processes that died although nothing killed them on purpose."""
        return [n for n, p in self.processes.items() if not p.alive() and not expected_dead(n)]
