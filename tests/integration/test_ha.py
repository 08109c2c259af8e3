"""The scale-out shape, for real: Prometheus -> a clustered (or split) Alertmanager 0.25 pair -> two receiver
replicas (``receiver serve`` processes) on one PostgreSQL 15, acting on a real SQLite model registry,
paging and messaging real loopback HTTP sinks. Replicas are killed with SIGKILL at the worst moments; every
count is taken from the database and the sinks, never from a process's memory.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from model_registry import open_registry
from receiver.store import SqlStore, open_database_store
from tests.support.ha import ReceiverProcess, start_alertmanager_pair, start_receiver_process
from tests.support.payloads import alert, notification
from tests.support.realparts import RecordingServer, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TOKEN = "ha-webhook-token"
ADMIN = "ha-admin-token"

RUNBOOK = """
id: bad-release-ha
title: Bad release (HA test)
match: ['incident_type="errors"', 'cause="release"']
group_by: [model]
severity:
  - {level: SEV1}
contain:
  - {id: rollback, action: rollback, to: last_known_good, reason: bad release}
  - {id: page, action: page, service: ml-oncall}
%(extra)s
comms: {channels: [chat], cadence: 1h}
"""

RULES = """
groups:
  - name: release
    interval: 1s
    rules:
      - alert: ModelReleaseErrors
        expr: max by (model) (model_release_error_ratio) > 0.1
        labels: {severity: page, incident_type: errors, cause: release}
        annotations: {summary: 'release of {{ $labels.model }} fails', value: '{{ $value }}'}
"""


@dataclass
class HAStack:
    workdir: Path
    pg_url: str
    replicas: list[ReceiverProcess]
    chat: RecordingServer
    pager: RecordingServer
    registry_db: Path
    settings: dict[str, Any]

    def store(self) -> SqlStore:
        return open_database_store(self.pg_url, migrate=False)

    def rollbacks(self) -> int:
        return sum(e.action == "rollback" for e in open_registry(str(self.registry_db)).history("fraud"))

    def active(self) -> str | None:
        return open_registry(str(self.registry_db)).state("fraud").active_version

    def opened_messages(self) -> list[Any]:
        return [b for b in self.chat.bodies() if b["update"]["event"] == "opened"]

    def add_replica(self, name: str, **overrides: Any) -> ReceiverProcess:
        replica = start_receiver_process(self.workdir, name, {**self.settings, **overrides})
        self.replicas.append(replica)
        return replica


def _registry(path: Path) -> None:
    reg = open_registry(str(path))
    for version in ("v6", "v7"):
        reg.register(
            "fraud",
            version,
            artifact_path=f"/models/{version}",
            baseline=None,
            metadata={},
            actor="test",
            reason="setup",
            healthy=version == "v6",
        )
    reg.promote("fraud", "v6", actor="test", reason="setup")
    reg.promote("fraud", "v7", actor="test", reason="release")


@pytest.fixture
def ha_factory(tmp_path: Path, pg_url: str, recording_server: Any) -> Iterator[Any]:
    started: list[HAStack] = []

    def factory(*, extra: str = "", replicas: int = 2, **overrides: Any) -> HAStack:
        runbooks = tmp_path / "runbooks"
        runbooks.mkdir(exist_ok=True)
        (runbooks / "bad-release-ha.yml").write_text(RUNBOOK % {"extra": extra})
        registry_db = tmp_path / "registry.db"
        _registry(registry_db)
        chat, pager = recording_server(), recording_server(status=202)
        (tmp_path / "chat-url").write_text(chat.url + "/hook\n")
        (tmp_path / "routing-key").write_text("R0UT1NG\n")
        (tmp_path / "token").write_text(TOKEN)
        (tmp_path / "admin").write_text(ADMIN)
        # trust authentication ignores the password; it is here so the test can check no log shows it
        url_with_password = pg_url.replace("postgres@", "postgres:hunter2-secret@", 1)
        settings: dict[str, Any] = {
            "database_url": url_with_password,
            "runbooks_dir": str(runbooks),
            "webhook_token_file": str(tmp_path / "token"),
            "admin_token_file": str(tmp_path / "admin"),
            "registry_db": str(registry_db),
            "pager_url": pager.url + "/v2/enqueue",
            "pager_routing_key_file": str(tmp_path / "routing-key"),
            "channels": {"chat": {"type": "webhook", "url_file": str(tmp_path / "chat-url")}},
            "prometheus_url": "http://127.0.0.1:9",  # evidence is not under test here
            "worker_poll_interval": 0.2,
            "lease_seconds": 3,
            "shutdown_grace_seconds": 2,
            "log_format": "text",
            **overrides,
        }
        stack = HAStack(tmp_path, pg_url, [], chat, pager, registry_db, settings)
        started.append(stack)
        for n in range(replicas):
            stack.add_replica(f"r{n + 1}")
        return stack

    yield factory
    for stack in started:
        for replica in stack.replicas:
            replica.stop()


def _exporter() -> tuple[Gauge, int]:
    registry = CollectorRegistry()
    gauge = Gauge("model_release_error_ratio", "errors of the new release", ["model"], registry=registry)
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=registry)
    return gauge, port


def _am_config(url: str, token_file: Path) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "rx",
            "group_by": ["model"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "rx",
                "webhook_configs": [
                    {
                        "url": url + "/api/v1/alerts",
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
                        },
                    }
                ],
            }
        ],
    }


def _counts(store: SqlStore) -> dict[str, int]:
    with store.db.read() as tx:
        return {
            "incidents": int(tx.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]),
            "notifications": int(tx.execute("SELECT COUNT(*) FROM notifications").fetchone()[0]),
            "rollback_rows": int(
                tx.execute("SELECT COUNT(*) FROM action_ledger WHERE kind = 'rollback'").fetchone()[0]
            ),
            "opened_entries": int(
                tx.execute("SELECT COUNT(*) FROM timeline WHERE kind = 'opened'").fetchone()[0]
            ),
        }


@pytest.mark.parametrize("clustered", [True, False], ids=["clustered", "split-brain"])
def test_a_bad_release_through_the_alertmanager_pair_is_contained_once(
    ha_factory: Any, prometheus_factory: Any, clustered: bool
) -> None:
    stack = ha_factory()
    gauge, port = _exporter()
    gauge.labels("fraud").set(0.0)
    peers = start_alertmanager_pair(
        stack.workdir / "am",
        [_am_config(r.url, stack.workdir / "token") for r in stack.replicas],  # each peer -> its own replica
        clustered=clustered,
    )
    prometheus_factory(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yml"],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [p.url.removeprefix("http://") for p in peers]}]}
                ]
            },
            "scrape_configs": [{"job_name": "model", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        },
        rule_files={"rules.yml": RULES},
    )
    try:
        gauge.labels("fraud").set(0.2)  # the release fails 20 % of its requests
        wait_until(lambda: stack.active() == "v6", timeout=60, message="the rollback to v6")
        wait_until(lambda: stack.opened_messages(), timeout=30, message="the opened message")
        # let both peers deliver, flush and retry for a while: nothing more may happen
        time.sleep(6)
        store = stack.store()
        try:
            counts = _counts(store)
            with store.db.read() as tx:
                groups = {r[0] for r in tx.execute("SELECT DISTINCT group_key FROM notifications").fetchall()}
        finally:
            store.close()
        assert stack.rollbacks() == 1 and counts["rollback_rows"] == 1
        assert len([r for r in stack.pager.requests if r.json()["event_action"] == "trigger"]) == 1
        assert len(stack.opened_messages()) == 1
        assert counts["incidents"] == 1 and counts["opened_entries"] == 1
        assert len(groups) == 1  # one Alertmanager group
        if not clustered:
            # split peers both deliver: the duplicate reached the other replica and changed nothing
            assert counts["notifications"] >= 2
        events = [b["update"]["event"] for b in stack.chat.bodies()]
        assert events[0] == "opened"
    finally:
        for peer in peers:
            peer.stop()


class _SlowEndpoint:
    """An HTTP endpoint that answers after ``delay`` seconds and counts every request it got (with the
    ``Idempotency-Key`` of each)."""

    def __init__(self, delay: float) -> None:
        self.delay, self.hits = delay, 0
        self.keys: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.hits += 1
                endpoint.keys.append(self.headers.get("Idempotency-Key", ""))
                time.sleep(endpoint.delay)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _post(replica: ReceiverProcess, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        replica.url + "/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )


def _release_alert(model: str = "fraud") -> dict[str, Any]:
    return notification(
        alert(
            alertname="ModelReleaseErrors",
            incident_type="errors",
            cause="release",
            model=model,
            severity="page",
        ),
        group_key=f'{{}}:{{model="{model}"}}',
    )


def test_a_replica_killed_mid_action_leaves_the_step_to_the_survivor_which_escalates(ha_factory: Any) -> None:
    slow = _SlowEndpoint(delay=8.0)
    try:
        stack = ha_factory(
            extra=f"""  - {{id: deploy-hook, action: http, url: '{slow.url}/deploy', timeout: 20s,
     body: {{}}}}
escalate: {{after: 1h, to: ml-senior}}""",
            http_allow_list=[slow.url],
        )
        assert _post(stack.replicas[0], _release_alert()).status_code == 200
        wait_until(lambda: slow.hits == 1, timeout=30, message="the http step to be in flight")
        store = stack.store()
        try:
            # either replica's worker may have claimed the group: kill the one whose lease holds the step
            with store.db.read() as tx:
                owner = tx.execute("SELECT owner FROM action_ledger WHERE kind = 'http'").fetchone()[0]
            doomed = next(r for r in stack.replicas if owner.startswith(f"{r.name}-"))
            survivor = next(r for r in stack.replicas if r is not doomed)
            doomed.kill9()  # mid-request: the step may or may not have taken effect

            def interrupted() -> bool:
                with store.db.read() as tx:
                    row = tx.execute("SELECT state FROM action_ledger WHERE kind = 'http'").fetchone()
                return row is not None and row[0] == "interrupted"

            # the survivor's sweep takes the expired lease over (lease 3 s) while it runs: no restart needed
            wait_until(interrupted, timeout=30, message="the survivor to record the step as interrupted")
            wait_until(
                lambda: "escalated" in [e.kind for e in store.get_incident(1).timeline],
                timeout=10,
                message="the interrupted step to escalate",
            )
            detail = store.get_incident(1)
            assert any("interrupted" in e.message for e in detail.timeline if e.kind == "action")
            wait_until(lambda: store.pending_count() == 0, timeout=30, message="the response to finish")
        finally:
            store.close()
        time.sleep(2)
        assert slow.hits == 1  # never re-sent: http is not idempotent
        assert stack.rollbacks() == 1 and len(stack.opened_messages()) == 1
        assert survivor.alive()
    finally:
        slow.stop()


def test_a_web_only_replica_answers_and_leaves_the_work_to_a_replica_running_the_worker(
    ha_factory: Any,
) -> None:
    stack = ha_factory(replicas=0)
    web = stack.add_replica("web", run_worker=False)
    assert _post(web, _release_alert()).status_code == 200  # committed, as always, before the 200
    time.sleep(2)
    store = stack.store()
    try:
        assert store.pending_count() == 1 and _counts(store)["incidents"] == 0  # the web replica did no work
        assert stack.active() == "v7"
        # runs the worker, scheduler and outbox; Alertmanager never posts to it. It polls only every 30 s:
        # what it does sooner, it does because PostgreSQL woke it (LISTEN, migration 0009)
        stack.add_replica("w1", worker_poll_interval=30)
        wait_until(lambda: stack.active() == "v6", timeout=30, message="the rollback by the worker replica")
        wait_until(lambda: stack.opened_messages(), timeout=30, message="the opened message")
        wait_until(lambda: store.pending_count() == 0, timeout=30, message="the response to finish")
        resolved = _release_alert()
        resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
        resolved["alerts"][0]["endsAt"] = "2024-05-01T10:05:00Z"
        time.sleep(1)
        assert _post(web, resolved).status_code == 200
        wait_until(
            lambda: store.pending_count() == 0,
            timeout=5,
            message="the worker woken by the web replica's commit",
        )
        counts = _counts(store)
        with store.db.read() as tx:
            owners = [row[0] for row in tx.execute("SELECT owner FROM action_ledger").fetchall()]
    finally:
        store.close()
    assert counts["incidents"] == 1 and counts["rollback_rows"] == 1 and stack.rollbacks() == 1
    pages = [b for b in stack.pager.bodies() if b["event_action"] == "trigger"]
    assert len(stack.opened_messages()) == 1 and len(pages) == 1
    assert owners and all(owner.startswith("w1") for owner in owners)
    assert "web only (run_worker false)" in web.log()
    assert requests.get(web.url + "/readyz", timeout=5).status_code == 200  # no worker is not a fault


def test_a_replica_killed_right_after_its_200_loses_nothing(ha_factory: Any) -> None:
    stack = ha_factory()
    first, second = stack.replicas
    assert _post(first, _release_alert()).status_code == 200
    first.kill9()  # the body is committed; whether r1 applied it or not, r2 finishes the work
    wait_until(lambda: stack.active() == "v6", timeout=30, message="the rollback by the survivor")
    wait_until(lambda: stack.opened_messages(), timeout=30, message="the opened message")
    assert _post(second, _release_alert()).status_code == 200  # Alertmanager's retry, to the survivor
    time.sleep(3)
    store = stack.store()
    try:
        counts = _counts(store)
        assert store.pending_count() == 0
    finally:
        store.close()
    assert counts["incidents"] == 1 and counts["rollback_rows"] == 1 and stack.rollbacks() == 1
    assert len(stack.opened_messages()) == 1
    for replica in stack.replicas:  # the database password is in no log line
        assert "hunter2-secret" not in replica.log() and "postgres:***@" in replica.log()


def test_postgres_down_answers_503_and_everything_is_delivered_once_after(
    tmp_path: Path, recording_server: Any
) -> None:
    from tests.support.postgres import start_postgres
    from tests.support.receiver_server import WEBHOOK_TOKEN, make_settings, start_receiver

    server = start_postgres()  # its own server: this test stops it
    try:
        url = server.create_database("outage")
        runbooks = tmp_path / "runbooks"
        runbooks.mkdir()
        (runbooks / "r.yml").write_text(
            "id: drift\ntitle: drift\nmatch: ['incident_type=\"drift\"']\ngroup_by: [model]\n"
            "severity: [{level: SEV3}]\n"
        )
        settings = make_settings(tmp_path / "data", runbooks, database_url=url, responses=False)
        receiver = start_receiver(settings)
        hdr = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        try:

            def post(model: str) -> int:
                body = notification(alert(incident_type="drift", model=model), group_key=f"g-{model}")
                return requests.post(
                    receiver.url + "/api/v1/alerts", json=body, headers=hdr, timeout=20
                ).status_code

            assert post("m1") == 200
            server.stop()
            assert post("m2") == 503  # Alertmanager retries 5xx
            assert requests.get(receiver.url + "/readyz", timeout=20).status_code == 503
            server.start()
            wait_until(lambda: post("m2") == 200, timeout=30, message="intake to recover without a restart")
            assert post("m3") == 200
            wait_until(lambda: receiver.context.store.pending_count() == 0, timeout=30, message="drained")
            models = sorted(i.model or "" for i in receiver.context.store.list_incidents())
            assert models == ["m1", "m2", "m3"]
            ready = requests.get(receiver.url + "/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
        finally:
            receiver.stop()
    finally:
        server.destroy()


def test_a_slow_endpoint_and_a_hung_prometheus_do_not_delay_an_unrelated_release(
    ha_factory: Any,
) -> None:
    hung = socket.socket()  # accepts connections, never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    slow = _SlowEndpoint(delay=30.0)
    try:
        stack = ha_factory(
            replicas=1,
            extra=f"""  - {{id: hook, action: http, url: '{slow.url}/hook', timeout: 40s, body: {{}},
     when: 'labels.model == "slow"'}}
evidence:
  - {{name: errors, query: 'model_release_error_ratio{{model="{{{{ labels.model }}}}"}}'}}""",
            http_allow_list=[slow.url],
            prometheus_url=f"http://127.0.0.1:{hung.getsockname()[1]}",
        )
        [replica] = stack.replicas
        assert _post(replica, _release_alert("slow")).status_code == 200
        wait_until(lambda: slow.hits == 1, timeout=30, message="the slow hook to be in flight")
        start = time.monotonic()
        assert _post(replica, _release_alert("fraud")).status_code == 200
        wait_until(lambda: stack.active() == "v6", timeout=30, message="the unrelated rollback")
        took = time.monotonic() - start
        # behind a 30 s action and 10 s of evidence budget it would take > 30 s; the floor here is ~1 s
        assert took < 5.0, f"the unrelated release waited {took:.1f}s"
        # a stop does not wait for the slow hook: it leaves it to its lease after the grace (2 s here)
        stopping = time.monotonic()
        replica.process.terminate()
        replica.process.wait(timeout=10)
        assert time.monotonic() - stopping < 5.0 and replica.process.returncode == 0
        assert "still busy 2s after the stop signal (threads: " in replica.log()
    finally:
        slow.stop()
        hung.close()


def test_alert_states_are_unique_in_the_database_across_replicas(ha_factory: Any) -> None:
    stack = ha_factory(replicas=2)
    body = _release_alert()
    results: list[int] = []

    def deliver(replica: ReceiverProcess) -> None:
        results.append(_post(replica, body).status_code)

    threads = [threading.Thread(target=deliver, args=(r,)) for r in stack.replicas * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 6
    wait_until(lambda: stack.active() == "v6", timeout=30, message="the rollback")
    time.sleep(2)
    store = stack.store()
    try:
        with store.db.read() as tx:
            history = tx.execute("SELECT COUNT(*) FROM alert_history").fetchone()[0]
        counts = _counts(store)
    finally:
        store.close()
    assert history == 1 and counts["notifications"] == 6 and counts["incidents"] == 1
    assert stack.rollbacks() == 1 and len(stack.opened_messages()) == 1


def test_a_replica_killed_during_outbox_delivery_leaves_the_message_to_the_survivor(ha_factory: Any) -> None:
    slow_chat = _SlowEndpoint(delay=6.0)
    try:
        stack = ha_factory()
        (stack.workdir / "chat-url").write_text(slow_chat.url + "/hook\n")  # read at start: restart both
        for replica in stack.replicas:
            replica.stop()
        stack.replicas.clear()
        first, second = stack.add_replica("r1"), stack.add_replica("r2")
        second.stop()  # only r1 runs while the message goes out
        assert _post(first, _release_alert()).status_code == 200
        wait_until(lambda: slow_chat.hits >= 1, timeout=30, message="the opened message to be in flight")
        first.kill9()  # mid-delivery: the chat may or may not have taken it
        second = stack.add_replica("r2b")
        store = stack.store()
        try:

            def delivered() -> bool:
                with store.db.read() as tx:
                    rows = tx.execute("SELECT status FROM outbox").fetchall()
                return bool(rows) and all(r[0] == "delivered" for r in rows)

            wait_until(delivered, timeout=60, message="the survivor to deliver every queued message")
            with store.db.read() as tx:
                queued = tx.execute("SELECT COUNT(*), COUNT(DISTINCT dedupe_key) FROM outbox").fetchone()
        finally:
            store.close()
        assert queued[0] == queued[1]  # queued once each
        # the one unknowable moment (sent, no answer yet) is resent with the same Idempotency-Key, so the
        # endpoint can drop the copy; every other message went out exactly once
        assert len(set(slow_chat.keys)) == queued[0]
        assert all(key for key in slow_chat.keys)
        assert slow_chat.keys.count(slow_chat.keys[0]) <= 2 and len(slow_chat.keys) <= queued[0] + 1
        assert stack.rollbacks() == 1
    finally:
        slow_chat.stop()
