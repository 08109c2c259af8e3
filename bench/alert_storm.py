"""Alert storm: 100 models x 10 alerts fire together through REAL Alertmanager 0.25 into the receiver.

    .venv/bin/python bench/alert_storm.py [--models 100] [--timeout 180]              # one SQLite replica
    .venv/bin/python bench/alert_storm.py --database-url temp [--failover]            # the HA shape
    .venv/bin/python bench/alert_storm.py --database-url temp --spread    # the pair behind one balancer
    .venv/bin/python bench/alert_storm.py --database-url temp --split-work   # web-only + worker processes

Without ``--database-url`` one Alertmanager posts to one ``receiver serve`` on SQLite. With it (``temp``:
a throwaway PostgreSQL 15 on loopback) a clustered Alertmanager pair (gossip on loopback) posts, peer n to
replica n, into two replicas sharing that PostgreSQL (``--spread``: both peers post to one balancer over
both replicas, as behind a Kubernetes Service; ``--split-work``: each replica is two processes on the
database, one answering the webhook with ``run_worker: false`` and one running the worker, scheduler and
outbox, which Alertmanager does not post to). Alertmanager runs the repo's alertmanager.yml,
time-compressed by receiver.rulegen (as in a drill), pointed at each replica through a timing proxy
(``bench/timing_proxy.py``: a loopback HTTP forwarder in its own process that records how long the receiver
took to answer each webhook). Receivers run the repo's runbooks in dry-run, chat and pager to a
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
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.databases import database, open_bench_store  # noqa: E402
from bench.storm_counts import ClaimWatch, drained, storm_counts  # noqa: E402
from receiver.drill.chatsink import ChatSink  # noqa: E402
from receiver.drill.processes import ManagedProcess, free_port, spawn  # noqa: E402
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
    """``bench/timing_proxy.py`` in front of one replica: its own process, so its timing waits for nothing
    in this one. :meth:`collect` fetches what it recorded."""

    def __init__(self, upstreams: list[str], workdir: Path) -> None:
        port_file = workdir / f"proxy-{secrets.token_hex(4)}.port"
        argv = [sys.executable, str(REPO / "bench" / "timing_proxy.py"), "--port-file", str(port_file)]
        for upstream in upstreams:
            argv += ["--upstream", upstream]
        self.process = subprocess.Popen(argv, cwd=REPO)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"timing proxy for {upstream} did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"
        self.durations: list[float] = []
        self.status_log: list[int] = []  # one per duration
        self.upstream_log: list[int] = []  # one per duration: which upstream answered
        self.statuses: dict[int, int] = {}
        self.client_gone = 0

    def collect(self) -> TimingProxy:
        stats = requests.get(self.url + "/__stats", timeout=30).json()
        self.durations = [float(d) for d, _, _ in stats["answers"]]
        self.status_log = [int(s) for _, s, _ in stats["answers"]]
        self.upstream_log = [int(u) for _, _, u in stats["answers"]]
        self.statuses = {}
        for status in self.status_log:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.client_gone = int(stats["client_gone"])
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


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


def _served_buckets(url: str) -> dict[float, float]:
    """The replica's own ``receiver_webhook_answer_seconds`` histogram: cumulative count per bucket bound."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics", timeout=10).text
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "receiver_webhook_answer_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    out[bound] = out.get(bound, 0.0) + sample.value
    return out


def _bucket_quantile(buckets: dict[float, float], q: float) -> float:
    """``histogram_quantile`` over cumulative buckets: linear within the bucket holding the quantile."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total == 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(buckets[bound] - below, 1e-9)
        lower, below = bound, buckets[bound]
    return lower


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


def _start_alertmanagers(work: Path, targets: list[str], token: Path) -> list[str]:
    """One unclustered Alertmanager (one target) or a clustered pair (peer n posts to target n)."""
    source = yaml.safe_load((REPO / "alertmanager/alertmanager.yml").read_text())
    docs = [
        compress_alertmanager(source, receiver_url=url + "/api/v1/alerts", credentials_file=str(token))
        for url in targets
    ]
    if len(targets) == 2:
        from tests.support.ha import start_alertmanager_pair

        peers = start_alertmanager_pair(work, docs, clustered=True)
        _STOP.extend(p.process for p in peers)
        return [p.url for p in peers]
    amport = free_port()
    (work / "alertmanager.yml").write_text(yaml.safe_dump(docs[0]))
    am = spawn(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'am'}",
            f"--web.listen-address=127.0.0.1:{amport}",
            "--cluster.listen-address=",
        ],
        f"http://127.0.0.1:{amport}",
        logs_dir=work,
        cwd=REPO,
    )
    _STOP.append(am.process)
    _wait(am.url + "/-/ready", am)
    return [am.url]


def baseline(models: int, ha: bool, spread: bool, timeout: float = 60.0) -> dict[str, Any]:
    """The same storm through the same Alertmanager(s) and timing proxy into bare endpoints (a Flask view
    answering 200 at once behind the receiver's own waitress front, ``bench/webhook.py``), one per replica:
    the floor of the harness and the HTTP server on this machine, measured in the same session."""
    from bench.webhook import run_server, stop
    from receiver.config import Settings

    work = Path(tempfile.mkdtemp(prefix="alert-storm-baseline-"))
    bare = [run_server("barefront", str(work / f"b{n}"), Settings.threads) for n in range(2 if ha else 1)]
    urls = [f"http://127.0.0.1:{port}" for _, port in bare]
    proxies = [TimingProxy(urls, work)] if spread else [TimingProxy([u], work) for u in urls]
    try:
        token = work / "webhook-token"
        token.write_text("baseline")
        targets = [proxies[0].url] * 2 if spread else [p.url for p in proxies]
        am_urls = _start_alertmanagers(work, targets, token)
        alerts = _alerts(models)
        for url in am_urls:
            requests.post(url + "/api/v2/alerts", json=alerts, timeout=30).raise_for_status()
        groups, start, seen, quiet_since = models * len(ALERT_MIX), time.monotonic(), -1, time.monotonic()
        while time.monotonic() - start < timeout:
            answered = sum(len(p.collect().durations) for p in proxies)
            if answered != seen:
                seen, quiet_since = answered, time.monotonic()
            elif answered >= groups and time.monotonic() - quiet_since > 2:
                break  # every group answered and nothing more for 2 s (a late peer would have shown)
            time.sleep(0.2)
        durations = [d for p in proxies for d, s in zip(p.durations, p.status_log, strict=True) if s == 200]
        return {
            "baseline_posts": len(durations),
            "baseline_answer_p50_ms": round(_pct(durations, 0.50) * 1000, 2),
            "baseline_answer_p99_ms": round(_pct(durations, 0.99) * 1000, 2),
        }
    finally:
        _stop_harness(proxies)
        for proc, _ in bare:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


#: child processes to stop at the end (Alertmanagers), newest last
_STOP: list[subprocess.Popen[bytes]] = []


def _stop_harness(proxies: list[TimingProxy]) -> None:
    """Stop the Alertmanagers (newest first) and the timing proxies."""
    for proc in reversed(_STOP):
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
    _STOP.clear()
    for proxy in proxies:
        proxy.stop()


def run(
    models: int,
    timeout: float,
    database_url: str | None,
    failover: bool,
    lease: float,
    spread: bool = False,
    split: bool = False,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="alert-storm-"))
    sink = ChatSink()
    replicas: list[ReceiverProcess] = []
    workers: list[ReceiverProcess] = []
    proxies: list[TimingProxy] = []
    ha = database_url is not None
    try:
        token = work / "webhook-token"
        token.write_text(secrets.token_urlsafe(32))
        token.chmod(0o600)
        settings = _receiver_settings(work, sink, token, database_url, lease)
        for n in range(2 if ha else 1):
            web = {**settings, "run_worker": False} if split else settings
            replicas.append(_start_receiver(work, f"r{n + 1}", web))
            if split:  # the replica's work in a process of its own, on the same database
                workers.append(_start_receiver(work, f"w{n + 1}", settings))
        if spread:  # both peers post to one balancer over both replicas
            proxies = [TimingProxy([r.url for r in replicas], work)]
            am_urls = _start_alertmanagers(work, [proxies[0].url] * 2, token)
        else:  # peer n posts to replica n
            proxies = [TimingProxy([r.url], work) for r in replicas]
            am_urls = _start_alertmanagers(work, [p.url for p in proxies], token)
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
                victim = max(range(len(replicas)), key=lambda i: _posts_per_replica(proxies, spread, 2)[i])
                dead = replicas[victim]
                # with --split-work the node goes: its web process and the worker holding its claims
                claimant = workers[victim] if split else dead
                peak_rss[dead.name] = _peak_rss_mb(dead.process.pid)
                killed_at = time.time()
                dead.kill9()  # SIGKILL: no shutdown path runs
                claimant.kill9()
                watch = ClaimWatch(store, killed_at, f"{claimant.name}-{claimant.process.pid}")
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
        for proxy in proxies:
            proxy.collect()
        served: dict[float, float] = {}
        for r in replicas + workers:
            if r.alive():
                peak_rss[r.name] = _peak_rss_mb(r.process.pid)
                for bound, seen in _served_buckets(r.url).items():
                    served[bound] = served.get(bound, 0.0) + seen
        answered = [d for p in proxies for d, s in zip(p.durations, p.status_log, strict=True) if s == 200]
        statuses: dict[int, int] = {}
        for p in proxies:
            for code, n in p.statuses.items():
                statuses[code] = statuses.get(code, 0) + n
        result: dict[str, Any] = {
            "shape": (
                "1 replica on SQLite"
                if not ha
                else "2 replicas on PostgreSQL, clustered Alertmanager pair, "
                + ("both peers to a balancer over both replicas" if spread else "peer n to replica n")
                + (", each a web-only and a worker process" if split else "")
            ),
            "models": models,
            "alerts_pushed": len(alerts),
            "incidents_expected": expected_incidents,
            **counts,
            "push_seconds": round(pushed_in, 3),
            "drained_after_seconds": None if drained_in is None else round(drained_in, 2),
            "webhook_posts": sum(len(p.durations) for p in proxies),
            "webhook_statuses": statuses,
            "posts_per_replica": _posts_per_replica(proxies, spread, len(replicas), collect=False),
            "answers_alertmanager_left_before": sum(p.client_gone for p in proxies),
            "webhook_answer_p50_ms": round(_pct(answered, 0.50) * 1000, 2),
            "webhook_answer_p99_ms": round(_pct(answered, 0.99) * 1000, 2),
            "webhook_answer_max_ms": round(max(answered, default=float("nan")) * 1000, 2),
            # the same answers timed by the replicas themselves (first byte to answer, the wait for a free
            # thread included), from their receiver_webhook_answer_seconds histograms; live replicas only
            "served_answers": served.get(float("inf"), 0),
            "served_answer_p50_ms": round(_bucket_quantile(served, 0.50) * 1000, 1),
            "served_answer_p99_ms": round(_bucket_quantile(served, 0.99) * 1000, 1),
            "served_answers_within_300ms": round(served.get(0.3, 0) / max(served.get(float("inf"), 0), 1), 4),
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
        for r in reversed(replicas + workers):
            r.stop()
        _stop_harness(proxies)
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def _posts_per_replica(
    proxies: list[TimingProxy], spread: bool, replicas: int, *, collect: bool = True
) -> list[int]:
    counts = [0] * replicas
    for n, proxy in enumerate(proxies):
        for upstream in (proxy.collect() if collect else proxy).upstream_log:
            counts[upstream if spread else n] += 1
    return counts


def _at_peak(store: Any, expected_groups: int) -> bool:
    """The storm's peak: half of the groups acknowledged (the backlog is then near its largest) and some
    response claimed (with ``--split-work`` the workers may not have claimed any yet when half is in)."""
    from bench.databases import count

    if count(store, "SELECT COUNT(DISTINCT group_key) FROM notifications") < expected_groups // 2:
        return False
    leased = "SELECT COUNT(*) FROM notifications WHERE state = 'applied' AND lease_until_ts > ?"
    return count(store, leased, (time.time(),)) > 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--database-url", help="PostgreSQL for two replicas ('temp': a throwaway one)")
    parser.add_argument("--failover", action="store_true", help="kill -9 one replica at the storm's peak")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="both Alertmanager peers post to one balancer over both replicas (else peer n to replica n)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="first run the same storm into bare endpoints (the harness's floor) and print the ratio",
    )
    parser.add_argument(
        "--split-work",
        action="store_true",
        help="each replica as two processes: one answers the webhook (run_worker: false), one does the work",
    )
    parser.add_argument("--lease-seconds", type=float, default=15.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if (args.failover or args.spread or args.split_work) and not args.database_url:
        parser.error("--failover, --spread and --split-work need --database-url (replicas share PostgreSQL)")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    floor = baseline(args.models, args.database_url is not None, args.spread) if args.baseline else {}
    with ExitStack() as stack:
        url = stack.enter_context(database(args.database_url))
        result = run(
            args.models, args.timeout, url, args.failover, args.lease_seconds, args.spread, args.split_work
        )
    if floor:
        result.update(floor)
        result["answer_p99_ratio_to_baseline"] = round(
            result["webhook_answer_p99_ms"] / max(floor["baseline_answer_p99_ms"], 1e-9), 2
        )
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
