"""Alert storm: 100 models x 10 alerts fire together through REAL Alertmanager 0.25 into the receiver.

    .venv/bin/python bench/alert_storm.py [--models 100] [--timeout 180]              # one SQLite replica
    .venv/bin/python bench/alert_storm.py --database-url temp [--failover]            # the HA shape

Without ``--database-url`` one Alertmanager posts to one ``receiver serve`` on SQLite. With it (``temp``:
a throwaway PostgreSQL 15 on loopback) a clustered Alertmanager pair (gossip on loopback) posts, peer n to
replica n, into two replicas sharing that PostgreSQL. Alertmanager runs the repo's alertmanager.yml,
time-compressed by receiver.rulegen (as in a drill), pointed at each replica through a timing proxy: a
loopback HTTP forwarder that records how long the receiver took to answer each webhook (the proxy's own
overhead is outside the measured span). Receivers run the repo's runbooks in dry-run, chat and pager to a
local sink. Alerts are pushed with Alertmanager's v2 API (to both peers in the HA shape, as Prometheus
does).

Reported, counted from the database and the sink: alerts recorded, incidents opened, notifications,
actions and messages, each with duplicates and what is left unfinished; webhook answer time p50/p99/max
(answers that reached a live receiver); each replica's peak RSS (VmHWM). ``--failover`` kills -9 the busier
replica at the storm's peak (half of the expected groups acknowledged) and reports when the survivor had
drained everything, and how long each claim held at the kill (responses, messages, timers, and the dead
replica's action steps) waited to be finished by the survivor. Targets: nothing lost, nothing duplicated,
p99 <= 300 ms, peak RSS <= 300 MB per replica, failover claims finished within lease + 5 s.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.databases import database, open_bench_store  # noqa: E402
from bench.storm_counts import ClaimWatch, drained, storm_counts  # noqa: E402
from receiver.drill.chatsink import ChatSink  # noqa: E402
from receiver.drill.stack import ManagedProcess, free_port  # noqa: E402
from receiver.rulegen import compress_alertmanager  # noqa: E402
from tests.support.ha import ReceiverProcess  # noqa: E402

#: (incident_type, alerts of that type per model): 10 alerts, 7 incidents per model.
ALERT_MIX = (
    ("latency", ["ModelLatencyP95High"]),
    ("errors", ["ModelErrorBudgetBurnFast"]),
    ("drift", ["ModelFeatureDriftHigh:f1", "ModelFeatureDriftHigh:f2", "ModelFeatureDriftHigh:f3"]),
    ("prediction_shift", ["ModelPredictionMeanShift"]),
    ("auc_drop", ["ModelAUCDrop"]),
    ("toxicity", ["ModelToxicOutputRatioHigh"]),
    ("data_quality", ["ModelInputProblemsHigh:a", "ModelInputProblemsHigh:b"]),
)


class TimingProxy:
    """Forwards POSTs to ``upstream`` and records the upstream answer time of each."""

    def __init__(self, upstream: str) -> None:
        self.durations: list[float] = []
        self.status_log: list[int] = []  # one per duration
        self.statuses: dict[int, int] = {}
        self.client_gone = 0
        lock = threading.Lock()
        session_local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")
                }
                session = getattr(session_local, "s", None) or requests.Session()
                session_local.s = session
                start = time.perf_counter()
                try:
                    resp = session.post(upstream + self.path, data=body, headers=headers, timeout=30)
                    status, answer = resp.status_code, resp.content
                except requests.RequestException:
                    status, answer = 502, b"{}"
                elapsed = time.perf_counter() - start
                with lock:
                    proxy.durations.append(elapsed)
                    proxy.status_log.append(status)
                    proxy.statuses[status] = proxy.statuses.get(status, 0) + 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    with lock:  # Alertmanager gave up on this attempt (it retries); count, don't trace
                        proxy.client_gone += 1

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            # Alertmanager opens hundreds of connections at once when the storm's groups flush; the default
            # listen backlog of 5 made some wait in SYN retries past Alertmanager's 10 s notify timeout,
            # which was then charged to the receiver as abandoned answers. The receiver's own (waitress)
            # backlog is 1024.
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _spawn(name: str, argv: list[str], url: str, workdir: Path) -> ManagedProcess:
    log = workdir / f"{name}.log"
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,
        )
    return ManagedProcess(name, proc, url, log)


def _wait(url: str, proc: ManagedProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{proc.name} not ready at {url}")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _alerts(models: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for m in range(models):
        for incident_type, names in ALERT_MIX:
            for name in names:
                alertname, _, part = name.partition(":")
                labels = {
                    "alertname": alertname,
                    "model": f"storm-{m:03d}",
                    "incident_type": incident_type,
                    "severity": "page",
                }
                if part:
                    labels["feature" if incident_type == "drift" else "kind"] = part
                out.append(
                    {
                        "labels": labels,
                        "annotations": {"summary": f"{alertname} on storm-{m:03d}", "value": "0.5"},
                        "startsAt": now.isoformat(),
                        "endsAt": (now + timedelta(minutes=30)).isoformat(),
                        "generatorURL": "http://prometheus.invalid/graph",
                    }
                )
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _receiver_settings(
    work: Path, sink: ChatSink, token: Path, database_url: str | None, lease: float
) -> dict[str, Any]:
    admin = work / "admin-token"
    admin.write_text(secrets.token_urlsafe(32))
    (work / "pager-key").write_text("storm")
    channels = {}
    for name in ("ml-incidents", "ml-releases", "ml-tickets", "trust-and-safety"):
        (work / f"ch-{name}").write_text(f"{sink.url}/chat/{name}")
        channels[name] = {"type": "slack", "url_file": str(work / f"ch-{name}")}
    settings: dict[str, Any] = {
        "runbooks_dir": str(REPO / "runbooks"),
        "webhook_token_file": str(token),
        "admin_token_file": str(admin),
        "dry_run": True,
        "log_level": "WARNING",
        "registry_db": str(work / "registry.db"),
        "prometheus_url": "http://127.0.0.1:1",
        "channels": channels,
        "pager_url": f"{sink.url}/pager",
        "pager_routing_key_file": str(work / "pager-key"),
        "lease_seconds": lease,
    }
    if database_url:
        settings["database_url"] = database_url
    return settings


def _start_receiver(work: Path, name: str, settings: dict[str, Any]) -> ReceiverProcess:
    from tests.support.ha import start_receiver_process

    return start_receiver_process(work, name, settings)


def _start_alertmanagers(work: Path, proxies: list[TimingProxy], token: Path) -> list[str]:
    """One unclustered Alertmanager (one proxy) or a clustered pair (peer n posts to proxy n)."""
    source = yaml.safe_load((REPO / "alertmanager/alertmanager.yml").read_text())
    docs = [
        compress_alertmanager(source, receiver_url=p.url + "/api/v1/alerts", credentials_file=str(token))
        for p in proxies
    ]
    if len(proxies) == 2:
        from tests.support.ha import start_alertmanager_pair

        peers = start_alertmanager_pair(work, docs, clustered=True)
        _STOP.extend(p.process for p in peers)
        return [p.url for p in peers]
    amport = free_port()
    (work / "alertmanager.yml").write_text(yaml.safe_dump(docs[0]))
    am = _spawn(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'am'}",
            f"--web.listen-address=127.0.0.1:{amport}",
            "--cluster.listen-address=",
        ],
        f"http://127.0.0.1:{amport}",
        work,
    )
    _STOP.append(am.process)
    _wait(am.url + "/-/ready", am)
    return [am.url]


#: child processes to stop at the end (Alertmanagers), newest last
_STOP: list[subprocess.Popen[bytes]] = []


def run(
    models: int, timeout: float, database_url: str | None, failover: bool, lease: float
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="alert-storm-"))
    sink = ChatSink()
    replicas: list[ReceiverProcess] = []
    proxies: list[TimingProxy] = []
    ha = database_url is not None
    try:
        token = work / "webhook-token"
        token.write_text(secrets.token_urlsafe(32))
        token.chmod(0o600)
        settings = _receiver_settings(work, sink, token, database_url, lease)
        for n in range(2 if ha else 1):
            replicas.append(_start_receiver(work, f"r{n + 1}", settings))
        proxies = [TimingProxy(r.url) for r in replicas]
        am_urls = _start_alertmanagers(work, proxies, token)
        store = open_bench_store(database_url, work / "r1" / "data")

        alerts = _alerts(models)
        expected_incidents = models * len(ALERT_MIX)
        start = time.monotonic()
        for url in am_urls:  # Prometheus sends every alert to every Alertmanager
            requests.post(url + "/api/v2/alerts", json=alerts, timeout=30).raise_for_status()
        pushed_in = time.monotonic() - start
        kill: dict[str, Any] = {}
        watch: ClaimWatch | None = None
        peak_rss: dict[str, float] = {}
        drained_in = None
        while time.monotonic() - start < timeout:
            if failover and watch is None and _at_peak(store, expected_incidents):
                victim = max(range(len(replicas)), key=lambda i: len(proxies[i].durations))
                dead = replicas[victim]
                peak_rss[dead.name] = _peak_rss_mb(dead.process.pid)
                killed_at = time.time()
                dead.kill9()  # SIGKILL: no shutdown path runs
                watch = ClaimWatch(store, killed_at, f"{dead.name}-{dead.process.pid}")
                kill = {
                    "killed": dead.name,
                    "killed_at_unix": round(killed_at, 2),
                    "killed_after_s": round(time.monotonic() - start, 2),
                    "pending_at_kill": store.pending_count(),
                    "_mono": time.monotonic(),
                }
            if watch is not None:
                watch.poll()
            if drained(store, len(alerts), expected_incidents) and (watch is None or watch.poll()):
                drained_in = time.monotonic() - start
                break
            time.sleep(0.2)
        time.sleep(2)  # late duplicates (a peer's retry) would show up in the counts below
        counts = storm_counts(store, sink.messages())
        store.close()
        for r in replicas:
            if r.alive():
                peak_rss[r.name] = _peak_rss_mb(r.process.pid)
        answered = [d for p in proxies for d, s in zip(p.durations, p.status_log, strict=True) if s == 200]
        statuses: dict[int, int] = {}
        for p in proxies:
            for code, n in p.statuses.items():
                statuses[code] = statuses.get(code, 0) + n
        result: dict[str, Any] = {
            "shape": "2 replicas on PostgreSQL, clustered Alertmanager pair" if ha else "1 replica on SQLite",
            "models": models,
            "alerts_pushed": len(alerts),
            "incidents_expected": expected_incidents,
            **counts,
            "push_seconds": round(pushed_in, 3),
            "drained_after_seconds": None if drained_in is None else round(drained_in, 2),
            "webhook_posts": sum(len(p.durations) for p in proxies),
            "webhook_statuses": statuses,
            "posts_per_replica": [len(p.durations) for p in proxies],
            "answers_alertmanager_left_before": sum(p.client_gone for p in proxies),
            "webhook_answer_p50_ms": round(_pct(answered, 0.50) * 1000, 2),
            "webhook_answer_p99_ms": round(_pct(answered, 0.99) * 1000, 2),
            "webhook_answer_max_ms": round(max(answered, default=float("nan")) * 1000, 2),
            "peak_rss_mb": peak_rss,
        }
        if kill:
            mono = kill.pop("_mono")
            result.update(kill)
            result["survivor_drained_after_kill_s"] = (
                None if drained_in is None else round(drained_in - (mono - start), 2)
            )
            result["lease_seconds"] = lease
            result["claims_at_kill"] = watch.summary() if watch else {}
        result["nothing_lost"] = (
            counts["alerts_recorded"] == len(alerts)
            and counts["incidents"] == expected_incidents
            and counts["notifications_pending"] == 0
            and counts["actions_unfinished"] == 0
            and counts["messages_pending"] == 0
            and counts["messages_failed"] == 0
            and counts["notifications_failed"] == 0
            and counts["incidents_without_message"] == 0
        )
        result["nothing_duplicated"] = (
            counts["incident_duplicates"] == 0
            and counts["action_duplicates"] == 0
            and counts["posts_duplicate"] == 0
        )
        return result
    finally:
        for r in reversed(replicas):
            r.stop()
        for proc in reversed(_STOP):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        _STOP.clear()
        for proxy in proxies:
            proxy.stop()
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def _at_peak(store: Any, expected_groups: int) -> bool:
    """The storm's peak: half of the groups acknowledged (the backlog is then near its largest)."""
    from bench.databases import count

    return count(store, "SELECT COUNT(DISTINCT group_key) FROM notifications") >= expected_groups // 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--database-url", help="PostgreSQL for two replicas ('temp': a throwaway one)")
    parser.add_argument("--failover", action="store_true", help="kill -9 one replica at the storm's peak")
    parser.add_argument("--lease-seconds", type=float, default=15.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.failover and not args.database_url:
        parser.error("--failover needs --database-url (two replicas share PostgreSQL)")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with ExitStack() as stack:
        url = stack.enter_context(database(args.database_url))
        result = run(args.models, args.timeout, url, args.failover, args.lease_seconds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<34} {value}")
    p99 = result["webhook_answer_p99_ms"]
    rss = max(result["peak_rss_mb"].values(), default=float("nan"))
    ok = result["nothing_lost"] and result["nothing_duplicated"] and rss <= 300
    verdicts = [
        f"nothing lost -> {'OK' if result['nothing_lost'] else 'MISSED'}",
        f"nothing duplicated -> {'OK' if result['nothing_duplicated'] else 'MISSED'}",
        f"p99 {p99} ms <= 300 ms -> {'OK' if p99 <= 300 else 'MISSED'}",
        f"peak RSS per replica {rss} MB <= 300 MB -> {'OK' if rss <= 300 else 'MISSED'}",
    ]
    if "claims_at_kill" in result:
        waits = [v["max_wait_s"] for v in result["claims_at_kill"].values()]
        unfinished = sum(v["unfinished"] for v in result["claims_at_kill"].values())
        worst = max(waits, default=0.0)
        bound = args.lease_seconds + 5
        fine = unfinished == 0 and worst <= bound
        verdicts.append(
            f"dead replica's claims finished within {worst} s <= lease + 5 = {bound:g} s -> "
            f"{'OK' if fine else 'MISSED'}"
        )
        ok = ok and fine
    print("\ntargets: " + "; ".join(verdicts))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
