"""A real pipeline for the console's browser tests: an exporter → Prometheus (alert rule) → Alertmanager →
the receiver's webhook (waitress on loopback) → incident, evidence, traffic split on a real SQLite registry,
messages to a recording chat sink; and a headless Chromium driven by Selenium.

One of the exported series carries a ``<script>alert(1)</script>`` label, which Prometheus copies into the
alert's labels and annotations: every page must show it as text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from model_registry import open_registry
from receiver.console.users import hash_password
from tests.support.realparts import (
    RecordingServer,
    RunningProcess,
    free_port,
    start_alertmanager,
    start_prometheus,
    wait_until,
)
from tests.support.receiver_server import WEBHOOK_TOKEN, RunningReceiver, make_settings, start_receiver

XSS = "<script>alert(1)</script>"
PASSWORDS = {"alice": "alice-password-1", "victor": "victor-password-1"}

RUNBOOK = """
id: drift-console
title: Feature drift (console test)
match: ['incident_type="drift"']
group_by: [model]
owners: {incident_commander: ml-oncall, ml_owner: '{{ labels.team or "ml-models" }}'}
impact: 'Predictions of {{ labels.model }} may be off.'
severity:
  - {when: 'labels.severity == "page"', level: SEV2}
  - {level: SEV3}
contain:
  - {id: split, action: traffic_split, to: last_known_good, weight: 50, when: 'level in ["SEV1", "SEV2"]'}
recover:
  - {id: traffic-back, action: traffic_split}
evidence:
  - {name: max PSI, query: 'max(model_feature_psi{model="{{ labels.model }}"})'}
  - {name: PSI by feature, query: 'max by (feature, team) (model_feature_psi{model="{{ labels.model }}"})'}
verify: {query: 'max(model_feature_psi{model="{{ labels.model }}"}) < 0.2', for: 2s, timeout: 1h}
escalate: {after: 1h, to: ml-senior}
comms: {channels: [chat], cadence: 1h}
"""

#: the approvals test's runbook: the rollback waits for a person (issue 11 item 2's ``approve:`` block)
APPROVAL_RUNBOOK = """
id: drift-console
title: Feature drift (console approval test)
match: ['incident_type="drift"']
group_by: [model]
owners: {incident_commander: ml-oncall}
severity:
  - {level: SEV2}
contain:
  - id: rollback
    action: rollback
    to: last_known_good
    reason: drift after release
    approve: {when: 'level == "SEV2"', timeout: 10m, on_timeout: skip, role: responder}
evidence:
  - {name: max PSI, query: 'max(model_feature_psi{model="{{ labels.model }}"})'}
comms: {channels: [chat], cadence: 1h}
"""

RULES = """
groups:
  - name: drift
    interval: 1s
    rules:
      - alert: FeatureDrift
        expr: max by (model, team) (model_feature_psi) > 0.2
        for: 2s
        labels: {incident_type: drift, severity: page}
        annotations:
          summary: 'PSI of {{ $labels.model }} is {{ $value }} (team {{ $labels.team }})'
          value: '{{ $value }}'
"""


@dataclass
class ConsoleStack:
    workdir: Path
    receiver: RunningReceiver
    prometheus: RunningProcess
    alertmanager: RunningProcess
    chat: RecordingServer
    psi: Gauge
    registry_db: Path
    stopped: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.receiver.url

    def stop(self) -> None:
        self.receiver.stop()
        self.alertmanager.stop()
        self.prometheus.stop()
        self.chat.stop()

    def traffic(self) -> dict[str, float]:
        return dict(open_registry(str(self.registry_db)).state("churn").traffic)

    def signed_in(self, user: str) -> requests.Session:
        """A requests session signed in through the form (CSRF cookie and field, as a browser does)."""
        session = requests.Session()
        page = session.get(self.url + "/login", timeout=10)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        done = session.post(
            self.url + "/login",
            data={"csrf": csrf.group(1), "username": user, "password": PASSWORDS[user], "next": "/"},
            allow_redirects=False,
            timeout=10,
        )
        assert done.status_code == 303, done.text
        return session


def _registry(path: Path) -> None:
    reg = open_registry(str(path))
    for version in ("v1", "v2"):
        reg.register(
            "churn",
            version,
            artifact_path=f"/models/{version}",
            baseline=None,
            metadata={},
            actor="test",
            reason="setup",
            healthy=version == "v1",
        )
    reg.promote("churn", "v1", actor="test", reason="setup")
    reg.promote("churn", "v2", actor="test", reason="release")


def start_console_stack(workdir: Path, runbook: str = RUNBOOK, *, contained: bool = True) -> ConsoleStack:
    """The whole pipeline; waits for the incident, and (``contained``) for the split and the first message."""
    registry = CollectorRegistry()
    gauge = Gauge("model_feature_psi", "PSI", ["model", "version", "feature", "team"], registry=registry)
    gauge.labels("churn", "v2", "f1", XSS).set(0.31)
    exporter_port = free_port()
    start_http_server(exporter_port, addr="127.0.0.1", registry=registry)

    runbooks = workdir / "runbooks"
    runbooks.mkdir(parents=True)
    (runbooks / "drift.yml").write_text(runbook)
    registry_db = workdir / "registry.db"
    _registry(registry_db)
    chat = RecordingServer()
    (workdir / "chat-url").write_text(chat.url + "/hook\n")
    users = workdir / "users.yml"
    users.write_text(
        "users:\n"
        f"  - {{name: alice, role: responder, password: '{hash_password(PASSWORDS['alice'])}'}}\n"
        f"  - {{name: victor, role: viewer, password: '{hash_password(PASSWORDS['victor'])}'}}\n"
    )
    token_file = workdir / "webhook-token"
    token_file.write_text(WEBHOOK_TOKEN)

    port = free_port()
    prom_port, am_port = free_port(), free_port()
    settings = make_settings(
        workdir / "data",
        runbooks,
        registry_db=registry_db,
        prometheus_url=f"http://127.0.0.1:{prom_port}",
        channels={"chat": {"type": "webhook", "url_file": str(workdir / "chat-url")}},
        verify_interval=0.5,
        public_url=f"http://127.0.0.1:{port}",
        console_users_file=users,
    )
    try:
        receiver = start_receiver(settings, port=port)
    except BaseException:
        chat.stop()
        raise
    alertmanager = start_alertmanager(
        workdir / "am",
        {
            "route": {
                "receiver": "rx",
                "group_by": ["model"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "rx",
                    "webhook_configs": [
                        {
                            "url": receiver.url + "/api/v1/alerts",
                            "send_resolved": True,
                            "http_config": {
                                "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
                            },
                        }
                    ],
                }
            ],
        },
        port=am_port,
    )
    prometheus = start_prometheus(
        workdir / "prom",
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yml"],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [
                {"job_name": "model", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}
            ],
        },
        rule_files={"rules.yml": RULES},
        port=prom_port,
    )
    stack = ConsoleStack(workdir, receiver, prometheus, alertmanager, chat, gauge, registry_db)
    try:
        wait_until(lambda: receiver.context.store.list_incidents(), timeout=60, message="incident opened")
        if contained:
            wait_until(lambda: stack.traffic() == {"v1": 50.0, "v2": 50.0}, timeout=30, message="split")
            wait_until(lambda: chat.bodies(), timeout=30, message="opened message")
    except BaseException:
        stack.stop()
        raise
    return stack


def chromium_driver(download_dir: Path | None = None) -> Any:
    """Debian's chromium + chromium-driver, headless, with a fresh profile and no background traffic."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise RuntimeError("chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1400,1800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=driver_path, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.profile_dir = profile  # type: ignore[attr-defined]  # removed with the driver
    return driver
