"""Webhook benchmark: the real ``POST /api/v1/alerts`` (auth, validation, durable SQLite commit with
``synchronous=FULL``, worker running) against a bare Flask endpoint on the same waitress configuration.

Each server runs in its own child process (so client and servers never share a GIL); this process
generates load over persistent HTTP connections. Two phases: a fixed offered load (default 200
notifications/s; latency measured from the *scheduled* send time, so a stalled server cannot hide its
queueing) and max load (closed loop, N clients). Each phase runs on the bare server and then at once on
the real one, ``--rounds`` times, so both see the same machine load; medians are compared. After each real
phase the bench waits for the worker to drain its backlog and prints how long that took and the worker's
rate (the worker yields to requests, so under max load it falls behind and catches up afterwards).

    .venv/bin/python bench/webhook.py [--rate 200] [--seconds 10] [--clients 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOKEN = "bench-token"


def _payload(i: int) -> bytes:
    from tests.support.payloads import alert, notification

    return json.dumps(
        notification(alert(model=f"m{i % 50}", feature=f"f{i % 7}"), alert(model=f"m{i % 50}", feature="g"))
    ).encode()


def serve(kind: str, port: int, data_dir: str, threads: int) -> None:
    """Child process: run one server until killed."""
    from flask import Flask, request
    from waitress import serve as waitress_serve

    if kind == "bare":
        app = Flask("bare")

        @app.post("/api/v1/alerts")
        def bare() -> Any:
            request.get_data()
            return {"status": "accepted"}
    else:
        from dataclasses import replace

        from receiver.app import create_app
        from receiver.config import Secret, load_settings
        from tests.support.payloads import write_runbooks

        settings = load_settings(
            env={}, overrides={"data_dir": data_dir, "runbooks_dir": write_runbooks(Path(data_dir) / "rb")}
        )
        app = create_app(replace(settings, webhook_token=Secret(TOKEN), admin_token=Secret("admin")))
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" per queued request
    waitress_serve(app, host="127.0.0.1", port=port, threads=threads, _quiet=True)


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(self, body: bytes) -> int:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        try:
            self.conn.request("POST", "/api/v1/alerts", body=body, headers=headers)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            return 0


def fixed_rate(port: int, rate: float, seconds: float, bodies: list[bytes]) -> dict[str, float]:
    jobs: queue.Queue[float | None] = queue.Queue()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        client = Client(port)
        i = 0
        while (scheduled := jobs.get()) is not None:
            status = client.post(bodies[i % len(bodies)])
            done = time.perf_counter()
            i += 1
            with lock:
                latencies.append(done - scheduled)
                errors[0] += status != 200

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(32)]
    for w in workers:
        w.start()
    start = time.perf_counter()
    total = int(rate * seconds)
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put(scheduled)
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join(60)
    elapsed = time.perf_counter() - start
    return _summary(latencies, errors[0], elapsed)


def max_load(port: int, clients: int, seconds: float, bodies: list[bytes]) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        client = Client(port)
        i = offset
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status = client.post(bodies[i % len(bodies)])
            t1 = time.perf_counter()
            i += clients
            with lock:
                latencies.append(t1 - t0)
                errors[0] += status != 200

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return _summary(latencies, errors[0], time.perf_counter() - start)


def _summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100) if len(ordered) >= 2 else [0.0] * 99
    return {
        "requests": len(ordered),
        "errors": errors,
        "per_second": len(ordered) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def run_server(kind: str, data_dir: str, threads: int = 8) -> tuple[subprocess.Popen[bytes], int]:
    from tests.support.realparts import free_port, wait_until

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, __file__, "--serve", kind, "--port", str(port), "--data-dir", data_dir,
            "--threads", str(threads),
        ],
        cwd=REPO,
    )

    def up() -> bool:  # any HTTP answer (the bare app 404s /healthz) means it is listening
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        return True

    wait_until(up, timeout=30, message=f"{kind} server")
    return proc, port


def queue_depth(port: int) -> float:
    """The real server's ``receiver_queue_depth`` (notifications not yet applied and responded to)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    for line in text.splitlines():
        if line.startswith("receiver_queue_depth "):
            return float(line.split()[1])
    return float("nan")


def wait_drained(port: int, limit: float = 120.0) -> tuple[float, float]:
    """Seconds until the real server's worker has caught up with everything accepted (bounded), and the
    backlog it started from: their quotient is the worker's rate (applied and responded per second)."""
    start = time.perf_counter()
    backlog = depth = queue_depth(port)
    while time.perf_counter() - start < limit and depth > 0:
        time.sleep(0.1)
        depth = queue_depth(port)
    return time.perf_counter() - start, backlog - depth


def cpu_pressure() -> str:
    """Linux PSI: share of time runnable tasks waited for a CPU (other load on the machine skews results)."""
    try:
        return Path("/proc/pressure/cpu").read_text().split()[1]
    except (OSError, IndexError):
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads, same for both servers")
    parser.add_argument("--rounds", type=int, default=1, help="alternate bare/real this many times")
    parser.add_argument("--serve", choices=["real", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.data_dir, args.threads)
        return 0
    bodies = [_payload(i) for i in range(500)]
    kinds = ("bare", "real")
    phases = ("fixed", "max")
    runs: dict[tuple[str, str], list[dict[str, float]]] = {(k, p): [] for k in kinds for p in phases}
    drains: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        servers = {kind: run_server(kind, str(Path(tmp) / kind), args.threads) for kind in kinds}
        try:
            ports = {kind: port for kind, (_, port) in servers.items()}
            for kind in kinds:
                max_load(ports[kind], 4, 1.0, bodies)  # warm-up
            wait_drained(ports["real"])
            # each phase runs on both servers back to back, so both see the same machine
            for _ in range(args.rounds):
                for kind in kinds:
                    runs[kind, "fixed"].append(fixed_rate(ports[kind], args.rate, args.seconds, bodies))
                    if kind == "real":
                        drains.append(wait_drained(ports[kind]))
                for kind in kinds:
                    runs[kind, "max"].append(max_load(ports[kind], args.clients, args.seconds, bodies))
                    if kind == "real":
                        drains.append(wait_drained(ports[kind]))
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)
    print(
        f"cpus={os.cpu_count()} waitress threads={args.threads} rate={args.rate:g}/s "
        f"seconds={args.seconds:g} clients={args.clients} rounds={args.rounds} "
        f"cpu pressure after run: {cpu_pressure()}"
    )
    print(f"{'':6} {'phase':6} {'req':>7} {'err':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    best: dict[tuple[str, str], dict[str, float]] = {}
    for kind in kinds:
        for phase in ("fixed", "max"):
            for r in runs[kind, phase]:
                print(
                    f"{kind:6} {phase:6} {r['requests']:7.0f} {r['errors']:5.0f} {r['per_second']:9.1f} "
                    f"{r['p50_ms']:8.2f} {r['p99_ms']:8.2f}"
                )
            best[kind, phase] = {
                key: statistics.median(r[key] for r in runs[kind, phase]) for key in runs[kind, phase][0]
            }
    print(
        "real worker backlog after each phase: "
        + ", ".join(
            f"{n:.0f} in {d:.1f}s" + (f" ({n / d:.0f}/s)" if n >= 100 and d > 0 else "") for d, n in drains
        )
    )
    ratio = best["real", "max"]["per_second"] / best["bare", "max"]["per_second"]
    print(
        f"median over rounds: max throughput ratio real/bare = {ratio:.2f} (target >= 0.50); "
        f"p99 at {args.rate:g}/s real = {best['real', 'fixed']['p99_ms']:.2f} ms "
        f"(bare {best['bare', 'fixed']['p99_ms']:.2f} ms; target <= 25 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
