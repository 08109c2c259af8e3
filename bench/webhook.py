"""Webhook benchmark: the real ``POST /api/v1/alerts`` (auth, validation, durable commit: SQLite with
``synchronous=FULL`` or PostgreSQL; worker running) against a bare Flask endpoint on the same waitress
configuration, and the end-to-end processing rate (new incidents acknowledged AND applied AND responded).

Each server runs in its own child process (so client and servers never share a GIL); this process
generates load over persistent HTTP connections. Phases:

* ``fixed``: a fixed offered load (default 200 notifications/s; latency from the *scheduled* send time, so
  a stalled server cannot hide its queueing);
* ``max``: closed loop, N clients (spread over the replicas), for throughput;
* ``e2e``: closed loop, every notification opens a NEW incident (its own model and group); the rate is
  incidents opened and fully responded per second, from the first send until the database says nothing is
  pending (counted from the database, which must hold every one of them exactly once).

Each phase runs on every configuration back to back, ``--rounds`` times, so all see the same machine load;
medians are compared. Configurations: ``bare``; ``real`` (one replica); ``realN`` (``--replicas N`` > 1:
N replicas on the same database, started for those phases and stopped after, so ``real`` runs alone);
``--diagnose`` adds ``nowork`` (the real app with its worker switched off: what the webhook alone costs,
so real/nowork against nowork/bare shows how much of the gap the worker takes).

    .venv/bin/python bench/webhook.py [--rate 200] [--seconds 10] [--clients 16] [--rounds 3]
        [--database-url postgresql://...|temp] [--replicas N] [--diagnose]
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

from bench.databases import count, database, open_bench_store  # noqa: E402
from receiver.config import Settings  # noqa: E402

TOKEN = "bench-token"


def _payload(i: int) -> bytes:
    from tests.support.payloads import alert, notification

    return json.dumps(
        notification(alert(model=f"m{i % 50}", feature=f"f{i % 7}"), alert(model=f"m{i % 50}", feature="g"))
    ).encode()


def _new_incident(tag: str, i: int) -> bytes:
    """A notification of its own group whose two alerts open one new incident (model ``{tag}-{i}``)."""
    from tests.support.payloads import alert, notification

    model = f"{tag}-{i}"
    return json.dumps(
        notification(
            alert(model=model, feature="f1"),
            alert(model=model, feature="g"),
            group_key=f'{{}}:{{model="{model}"}}',
            groupLabels={"model": model},
        )
    ).encode()


def serve(kind: str, port: int, data_dir: str, threads: int, database_url: str | None, name: str) -> None:
    """Child process: run one server until killed."""
    from flask import Flask, request
    from waitress import serve as waitress_serve

    if kind in ("bare", "barefront"):
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

        overrides: dict[str, Any] = {
            "data_dir": data_dir,
            "runbooks_dir": write_runbooks(Path(data_dir) / "rb"),
            "replica": name,
        }
        if database_url:
            overrides["database_url"] = database_url
        settings = load_settings(env={}, overrides=overrides)
        app = create_app(
            replace(settings, webhook_token=Secret(TOKEN), admin_token=Secret("admin")),
            start_worker=kind != "nowork",
        )
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" per queued request
    if kind == "barefront":  # the bare app behind the receiver's own front (bench/alert_storm.py --baseline)
        from receiver.front import FrontLimits, create_front

        front = create_front(app, host="127.0.0.1", port=port, threads=threads, limits=FrontLimits())
        front.run()
        return
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


def max_load(ports: list[int], clients: int, seconds: float, bodies: list[bytes]) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        client = Client(ports[offset % len(ports)])
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far (Linux /proc)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def end_to_end(
    ports: list[int], clients: int, bodies: list[bytes], store: Any, tag: str, limit: float, pids: list[int]
) -> dict[str, float]:
    """Post every body (each opens one new incident) with ``clients`` closed-loop clients spread over the
    replicas, then wait until the database has nothing pending. Rate = incidents / (first send .. drained).
    """
    pending: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        pending.put(body)
    errors = [0]
    lock = threading.Lock()

    def worker(offset: int) -> None:
        client = Client(ports[offset % len(ports)])
        while True:
            try:
                body = pending.get_nowait()
            except queue.Empty:
                return
            status = client.post(body)
            if status != 200:
                with lock:
                    errors[0] += 1
                pending.put(body)  # Alertmanager would retry; so do we (bounded by the time limit)
                time.sleep(0.05)

    cpu0 = cpu_seconds(pids)
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(limit)
    acked = time.perf_counter() - start
    while store.pending_count() > 0 and time.perf_counter() - start < limit:
        time.sleep(0.05)
    total = time.perf_counter() - start
    cpu = cpu_seconds(pids) - cpu0
    opened = count(store, "SELECT COUNT(*) FROM incidents WHERE model LIKE ?", (f"{tag}-%",))
    distinct = count(store, "SELECT COUNT(DISTINCT model) FROM incidents WHERE model LIKE ?", (f"{tag}-%",))
    undone = count(
        store,
        "SELECT COUNT(*) FROM notifications WHERE state <> 'done' AND group_key LIKE ?",
        (f'%model="{tag}-%',),
    )
    return {
        "incidents": len(bodies),
        "opened": opened,
        "duplicates": opened - distinct,
        "undone": undone,
        "errors": errors[0],
        "acked_s": acked,
        "total_s": total,
        "per_second": opened / total,
        "ack_per_second": len(bodies) / acked,
        "cpu_ms_per_incident": cpu * 1000 / len(bodies),
    }


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


def run_server(
    kind: str, data_dir: str, threads: int = 8, database_url: str | None = None, name: str = "r1"
) -> tuple[subprocess.Popen[bytes], int]:
    from tests.support.realparts import free_port, wait_until

    port = free_port()
    argv = [
        sys.executable,
        __file__,
        "--serve",
        kind,
        "--port",
        str(port),
        "--data-dir",
        data_dir,
        "--threads",
        str(threads),
        "--name",
        name,
    ]
    env = {**os.environ, "BENCH_DATABASE_URL": database_url or ""}  # not on the command line (passwords)
    proc = subprocess.Popen(argv, cwd=REPO, env=env)

    def up() -> bool:  # any HTTP answer (the bare app 404s /healthz) means it is listening
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server {name} exited with {proc.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        return True

    wait_until(up, timeout=60, message=f"{kind} server")
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wait_drained(store: Any, limit: float = 120.0) -> tuple[float, float]:
    """Seconds until the workers have caught up with everything accepted (bounded), and the backlog they
    started from, counted in the database: their quotient is the workers' rate (applied and responded)."""
    start = time.perf_counter()
    backlog = depth = store.pending_count()
    while time.perf_counter() - start < limit and depth > 0:
        time.sleep(0.1)
        depth = store.pending_count()
    return time.perf_counter() - start, backlog - depth


def cpu_pressure() -> str:
    """Linux PSI: share of time runnable tasks waited for a CPU (other load on the machine skews results)."""
    try:
        return Path("/proc/pressure/cpu").read_text().split()[1]
    except (OSError, IndexError):
        return "n/a"


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs) if runs else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--threads",
        type=int,
        default=Settings.threads,
        help="waitress threads, same for every server (default: the receiver's, %(default)s)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternate the configurations this many times")
    parser.add_argument("--incidents", type=int, default=2000, help="new incidents per e2e phase")
    parser.add_argument(
        "--database-url", help="PostgreSQL for the real servers ('temp': start a throwaway one); else SQLite"
    )
    parser.add_argument("--replicas", type=int, default=1, help="also measure N replicas on one database")
    parser.add_argument("--diagnose", action="store_true", help="also measure the real app without worker")
    parser.add_argument("--serve", choices=["real", "bare", "barefront", "nowork"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="r1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        url = os.environ.get("BENCH_DATABASE_URL")
        serve(args.serve, args.port, args.data_dir, args.threads, url, args.name)
        return 0
    if args.replicas > 1 and not args.database_url:
        parser.error("--replicas > 1 needs --database-url (replicas share PostgreSQL; SQLite is one host)")
    if args.diagnose and args.database_url:
        parser.error("--diagnose runs on SQLite (the worker-less app needs a database of its own)")
    with database(args.database_url) as url:
        return _run(args, url)


def _run(args: argparse.Namespace, url: str | None) -> int:
    bodies = [_payload(i) for i in range(500)]
    multi = f"real{args.replicas}"
    kinds = ["bare", *(["nowork"] if args.diagnose else []), "real", *([multi] if args.replicas > 1 else [])]
    phases = ("fixed", "max", "e2e")
    runs: dict[tuple[str, str], list[dict[str, float]]] = {(k, p): [] for k in kinds for p in phases}
    drains: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        servers = {
            kind: run_server(kind, str(Path(tmp) / kind), args.threads, url if kind == "real" else None)
            for kind in kinds
            if kind != multi
        }
        store = open_bench_store(url, Path(tmp) / "real")
        extra: list[tuple[subprocess.Popen[bytes], int]] = []
        try:
            for kind in servers:
                max_load([servers[kind][1]], 4, 1.0, bodies)  # warm-up
            wait_drained(store)

            def ports(kind: str) -> list[int]:
                return [servers["real"][1]] + [p for _, p in extra] if kind == multi else [servers[kind][1]]

            for n in range(args.rounds):
                for kind in kinds:
                    if kind == multi:
                        extra[:] = [
                            run_server("real", str(Path(tmp) / f"real-{k}"), args.threads, url, f"r{k}")
                            for k in range(2, args.replicas + 1)
                        ]
                    try:
                        if kind != multi:
                            fixed = fixed_rate(ports(kind)[0], args.rate, args.seconds, bodies)
                            runs[kind, "fixed"].append(fixed)
                            if kind == "real":
                                drains.append((kind, *wait_drained(store)))
                        runs[kind, "max"].append(max_load(ports(kind), args.clients, args.seconds, bodies))
                        if kind in ("real", multi):
                            drains.append((kind, *wait_drained(store)))
                            tag = f"e{n}{kind}"
                            news = [_new_incident(tag, i) for i in range(args.incidents)]
                            pids = [servers["real"][0].pid] + [x.pid for x, _ in extra if kind == multi]
                            e2e = end_to_end(ports(kind), args.clients, news, store, tag, 300, pids)
                            runs[kind, "e2e"].append(e2e)
                    finally:
                        for proc, _ in extra:
                            stop(proc)
                        extra.clear()
        finally:
            store.close()
            for proc, _ in servers.values():
                stop(proc)
    _report(args, url, kinds, runs, drains, multi)
    return 0


def _report(
    args: argparse.Namespace,
    url: str | None,
    kinds: list[str],
    runs: dict[tuple[str, str], list[dict[str, float]]],
    drains: list[tuple[str, float, float]],
    multi: str,
) -> None:
    backend = "PostgreSQL" if url else "SQLite"
    print(
        f"database={backend} cpus={os.cpu_count()} waitress threads={args.threads} rate={args.rate:g}/s "
        f"seconds={args.seconds:g} clients={args.clients} rounds={args.rounds} incidents={args.incidents} "
        f"cpu pressure after run: {cpu_pressure()}"
    )
    print(f"{'':7} {'phase':6} {'req':>7} {'err':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in kinds:
        for phase in ("fixed", "max"):
            for r in runs[kind, phase]:
                print(
                    f"{kind:7} {phase:6} {r['requests']:7.0f} {r['errors']:5.0f} {r['per_second']:9.1f} "
                    f"{r['p50_ms']:8.2f} {r['p99_ms']:8.2f}"
                )
    print(
        "worker backlog after each phase: "
        + ", ".join(
            f"{k} {n:.0f} in {d:.1f}s" + (f" ({n / d:.0f}/s)" if n >= 100 and d > 0 else "")
            for k, d, n in drains
        )
    )
    for kind in kinds:
        for r in runs[kind, "e2e"]:
            print(
                f"{kind:7} e2e: {r['opened']:.0f}/{r['incidents']:.0f} incidents opened, "
                f"{r['duplicates']:.0f} duplicate, {r['undone']:.0f} not done, {r['errors']:.0f} non-200; "
                f"acked in {r['acked_s']:.1f}s "
                f"({r['ack_per_second']:.0f}/s), all applied and responded after {r['total_s']:.1f}s: "
                f"{r['per_second']:.0f} new incidents/s; server CPU {r['cpu_ms_per_incident']:.1f} ms each"
            )
    bare, real = _median(runs["bare", "max"], "per_second"), _median(runs["real", "max"], "per_second")
    print(
        f"median over rounds ({backend}): max throughput ratio real/bare = {real / bare:.2f} "
        "(target >= 0.70); "
        f"p99 at {args.rate:g}/s real = {_median(runs['real', 'fixed'], 'p99_ms'):.2f} ms "
        f"(bare {_median(runs['bare', 'fixed'], 'p99_ms'):.2f} ms; target <= 25 ms)"
    )
    if "nowork" in kinds:
        nowork = _median(runs["nowork", "max"], "per_second")
        print(
            f"  where the gap goes: nowork/bare = {nowork / bare:.2f} (the webhook's own cost), "
            f"real/nowork = {real / nowork:.2f} (what the worker in the same process takes)"
        )
    e2e = _median(runs["real", "e2e"], "per_second")
    print(f"  end-to-end, one replica: {e2e:.0f} new incidents/s applied and responded (target >= 300)")
    if multi in kinds:
        many = _median(runs[multi, "max"], "per_second")
        e2e_many = _median(runs[multi, "e2e"], "per_second")
        print(
            f"  {args.replicas} replicas against one: max throughput {many / real:.2f}x "
            f"({many:.0f} vs {real:.0f} req/s), end-to-end {e2e_many / e2e:.2f}x "
            f"({e2e_many:.0f} vs {e2e:.0f} new incidents/s; target > 1)"
        )


if __name__ == "__main__":
    sys.exit(main())
