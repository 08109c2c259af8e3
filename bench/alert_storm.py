"""Alert storm: 100 models x 10 alerts fire together through a REAL Alertmanager 0.25 into the receiver.

    .venv/bin/python bench/alert_storm.py [--models 100] [--timeout 180]

Alertmanager runs the repo's alertmanager/alertmanager.yml, time-compressed by receiver.rulegen (as in a
drill) and pointed at the receiver through a timing proxy: a loopback HTTP forwarder that records how long
the receiver took to answer each webhook (the proxy's own overhead is outside the measured span). The
receiver is the real `receiver serve` subprocess (dry-run responses, chat and pager to a local sink).
Alerts are pushed with Alertmanager's v2 API. Reported: alerts recorded vs pushed, incidents opened vs
expected (one per model and incident type), webhook answer time p50/p99/max, and the receiver's peak
RSS (VmHWM). Targets: nothing lost, peak RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from receiver.drill.chatsink import ChatSink  # noqa: E402
from receiver.drill.stack import ManagedProcess, free_port  # noqa: E402
from receiver.rulegen import compress_alertmanager  # noqa: E402

#: (incident_type, alerts of that type per model): 10 alerts, 7 incidents per model.
ALERT_MIX = (("latency", ["ModelLatencyP95High"]), ("errors", ["ModelErrorBudgetBurnFast"]),
             ("drift", ["ModelFeatureDriftHigh:f1", "ModelFeatureDriftHigh:f2", "ModelFeatureDriftHigh:f3"]),
             ("prediction_shift", ["ModelPredictionMeanShift"]), ("auc_drop", ["ModelAUCDrop"]),
             ("toxicity", ["ModelToxicOutputRatioHigh"]),
             ("data_quality", ["ModelInputProblemsHigh:a", "ModelInputProblemsHigh:b"]))


class TimingProxy:
    """Forwards POSTs to ``upstream`` and records the upstream answer time of each."""

    def __init__(self, upstream: str) -> None:
        self.durations: list[float] = []
        self.statuses: dict[int, int] = {}
        self.client_gone = 0
        lock = threading.Lock()
        session_local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type")}
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
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=REPO, start_new_session=True)
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
                labels = {"alertname": alertname, "model": f"storm-{m:03d}", "incident_type": incident_type,
                          "severity": "page"}
                if part:
                    labels["feature" if incident_type == "drift" else "kind"] = part
                out.append({"labels": labels,
                            "annotations": {"summary": f"{alertname} on storm-{m:03d}", "value": "0.5"},
                            "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=30)).isoformat(),
                            "generatorURL": "http://prometheus.invalid/graph"})
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(models: int, timeout: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="alert-storm-"))
    procs: list[ManagedProcess] = []
    sink = ChatSink()
    proxy: TimingProxy | None = None
    try:
        token = work / "webhook-token"
        token.write_text(secrets.token_urlsafe(32))
        token.chmod(0o600)
        admin = secrets.token_urlsafe(32)
        (work / "admin-token").write_text(admin)
        (work / "pager-key").write_text("storm")
        rport, amport = free_port(), free_port()
        receiver_url = f"http://127.0.0.1:{rport}"
        channels = {}
        for name in ("ml-incidents", "ml-releases", "ml-tickets", "trust-and-safety"):
            (work / f"ch-{name}").write_text(f"{sink.url}/chat/{name}")
            channels[name] = {"type": "slack", "url_file": str(work / f"ch-{name}")}
        config = {"host": "127.0.0.1", "port": rport, "data_dir": str(work / "data"),
                  "runbooks_dir": str(REPO / "runbooks"), "webhook_token_file": str(token),
                  "admin_token_file": str(work / "admin-token"), "dry_run": True, "log_level": "WARNING",
                  "registry_db": str(work / "registry.db"), "prometheus_url": "http://127.0.0.1:1",
                  "channels": channels, "pager_url": f"{sink.url}/pager",
                  "pager_routing_key_file": str(work / "pager-key")}
        (work / "receiver.yml").write_text(yaml.safe_dump(config))
        receiver = _spawn("receiver", [sys.executable, "-m", "receiver.cli", "serve", "--config",
                                       str(work / "receiver.yml")], receiver_url, work)
        procs.append(receiver)
        _wait(receiver_url + "/readyz", receiver)
        proxy = TimingProxy(receiver_url)
        am_doc = compress_alertmanager(yaml.safe_load((REPO / "alertmanager/alertmanager.yml").read_text()),
                                       receiver_url=proxy.url + "/api/v1/alerts", credentials_file=str(token))
        (work / "alertmanager.yml").write_text(yaml.safe_dump(am_doc))
        am_url = f"http://127.0.0.1:{amport}"
        am = _spawn("alertmanager", [
            "prometheus-alertmanager", f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'am'}", f"--web.listen-address=127.0.0.1:{amport}",
            "--cluster.listen-address="], am_url, work)
        procs.append(am)
        _wait(am_url + "/-/ready", am)

        alerts = _alerts(models)
        expected_incidents = models * len(ALERT_MIX)
        start = time.monotonic()
        resp = requests.post(am_url + "/api/v2/alerts", json=alerts, timeout=30)
        resp.raise_for_status()
        pushed_in = time.monotonic() - start
        db = work / "data" / "receiver.db"
        stored = incidents = 0
        while time.monotonic() - start < timeout:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                query = "SELECT count(*) FROM alerts WHERE labels LIKE '%storm-%'"
                stored = conn.execute(query).fetchone()[0]
                incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
            if stored >= len(alerts) and incidents >= expected_incidents:
                break
            time.sleep(0.5)
        settled_in = time.monotonic() - start
        time.sleep(2)  # let the responder finish its dry-run steps before reading peak memory
        return {
            "models": models, "alerts_pushed": len(alerts), "alerts_recorded": stored,
            "incidents_expected": expected_incidents, "incidents_opened": incidents,
            "push_seconds": round(pushed_in, 3), "all_recorded_after_seconds": round(settled_in, 2),
            "webhook_posts": len(proxy.durations), "webhook_statuses": proxy.statuses,
            "answers_alertmanager_left_before": proxy.client_gone,
            "webhook_answer_p50_ms": round(_pct(proxy.durations, 0.50) * 1000, 2),
            "webhook_answer_p99_ms": round(_pct(proxy.durations, 0.99) * 1000, 2),
            "webhook_answer_max_ms": round(max(proxy.durations, default=float("nan")) * 1000, 2),
            "receiver_peak_rss_mb": round(_peak_rss_mb(receiver.process.pid), 1),
            "chat_and_pager_posts": len(sink.messages()),
            "nothing_lost": stored == len(alerts) and incidents == expected_incidents,
        }
    finally:
        for proc in reversed(procs):
            proc.stop()
        if proxy is not None:
            proxy.stop()
        sink.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    result = run(args.models, args.timeout)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<28} {value}")
        print(f"\ntargets: nothing lost -> {'OK' if result['nothing_lost'] else 'MISSED'}; peak RSS "
              f"{result['receiver_peak_rss_mb']} MB <= 300 MB -> "
              f"{'OK' if result['receiver_peak_rss_mb'] <= 300 else 'MISSED'}")
    return 0 if result["nothing_lost"] and result["receiver_peak_rss_mb"] <= 300 else 1


if __name__ == "__main__":
    raise SystemExit(main())
