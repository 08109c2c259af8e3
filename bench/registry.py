"""Registry latency on a real SQLite file: rollback and promote p50/p99, plus the cheap reads.

Each cycle: promote v2 (v1 becomes served-healthy), roll back (v2 marked unhealthy, v1 active), clear
v2's mark. The baseline, measured in the same run on the same directory, is one bare SQLite write
transaction (``BEGIN IMMEDIATE; UPDATE; COMMIT`` with the registry's pragmas), so the ratio shows what
the registry's rules, JSON and audit cost on top of the unavoidable commit.

``--backend mlflow`` also starts a real local ``mlflow server`` (SQLite store, loopback) and runs the same
rollback cycle on it, printing its p50/p99 against SQLite's from the same run, then measures how long the
demo model server takes to serve a registry change made on MLflow (write returned -> ``/state`` shows it)
against its poll interval (target: at most two intervals).

    .venv/bin/python bench/registry.py [--n 500] [--dir /path/on/the/target/disk]
    .venv/bin/python bench/registry.py --backend mlflow [--n 100] [--follow 20] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_registry import open_registry

WHO: dict[str, Any] = {"actor": "bench", "reason": "benchmark"}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_commit(path: Path) -> Callable[[], None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v INTEGER)")
    conn.execute("INSERT OR REPLACE INTO t VALUES (1, 0)")
    conn.close()

    def run() -> None:
        c = sqlite3.connect(path, isolation_level=None)
        c.execute("PRAGMA synchronous = FULL")
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE t SET v = v + 1 WHERE k = 1")
        c.execute("COMMIT")
        c.close()

    return run


def report(name: str, samples: list[float], base_p50: float | None = None) -> None:
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    ratio = f"  ({p50 / base_p50:.1f}x bare commit p50)" if base_p50 else ""
    print(
        f"{name:<28} n={len(samples):<5} p50={p50 * 1e3:7.3f} ms  p99={p99 * 1e3:7.3f} ms  "
        f"mean={statistics.fmean(samples) * 1e3:7.3f} ms{ratio}"
    )


def cycles(reg: Any, n: int) -> tuple[list[float], list[float]]:
    """``n`` promote + rollback cycles on a fresh model ``bench``; (rollbacks, promotes) in seconds."""
    reg.register("bench", "v1", artifact_path="/m/v1", baseline=None, healthy=True, **WHO)
    reg.register("bench", "v2", artifact_path="/m/v2", baseline=None, **WHO)
    reg.promote("bench", "v1", **WHO)
    rollbacks: list[float] = []
    promotes: list[float] = []
    for _ in range(n):
        promotes.append(timed(lambda: reg.promote("bench", "v2", **WHO)))
        rollbacks.append(timed(lambda: reg.rollback("bench", expected_active="v2", **WHO)))
        reg.mark_healthy("bench", "v2", **WHO)
    return rollbacks, promotes


def follow_times(registry_url: str, workdir: Path, changes: int, poll: float) -> list[float]:
    """Seconds from a registry write returning to the demo model server serving it."""
    import requests

    from model_server.demo import bootstrap
    from model_server.server import ServerConfig
    from model_server.web import serve_background

    bootstrap(registry_url, "follow", workdir / "artifacts")
    reg = open_registry(registry_url)
    reg.promote("follow", "v2", **WHO)
    server = serve_background(ServerConfig(registry_url, "follow", port=0, poll_interval=poll))
    out: list[float] = []
    try:
        # warm-up: the first split loads v1's artifacts through MLflow (a download, not a poll)
        reg.split("follow", {"v1": 10.0, "v2": 90.0}, **WHO)
        while "v1" not in requests.get(server.url + "/state", timeout=5).json()["loaded_versions"]:
            time.sleep(0.01)
        for i in range(changes):
            weights = {"v1": 50.0, "v2": 50.0} if i % 2 == 0 else {"v2": 100.0}
            reg.split("follow", weights, **WHO)
            start = time.perf_counter()
            deadline = start + 10 * poll + 10
            while time.perf_counter() < deadline:
                state = requests.get(server.url + "/state", timeout=5).json()
                if state["traffic"] == weights:
                    break
                time.sleep(0.005)
            out.append(time.perf_counter() - start)
            time.sleep(poll * 0.37)  # decorrelate the next write from the poll phase
    finally:
        server.stop()
    return out


def bench_mlflow(args: argparse.Namespace, base: Path, sqlite_rollbacks: list[float]) -> None:
    from model_registry.mlflow_server import start_mlflow_server

    server = start_mlflow_server(base / "mlflow")
    try:
        reg = open_registry(server.registry_url)
        rollbacks, promotes = cycles(reg, args.n)
        polls = [timed(lambda: reg.serving_token("bench")) for _ in range(args.n)]
        sqlite_p50 = percentile(sqlite_rollbacks[: args.n], 0.5)
        sqlite_p99 = percentile(sqlite_rollbacks[: args.n], 0.99)
        print(f"\nMLflow {server.url} (mlflow server, SQLite store, 1 worker), {args.n} cycles:")
        report("mlflow rollback", rollbacks)
        report("mlflow promote", promotes)
        report("mlflow serving_token() poll", polls)
        print(
            f"mlflow rollback vs sqlite: p50 {percentile(rollbacks, 0.5) / sqlite_p50:.0f}x, "
            f"p99 {percentile(rollbacks, 0.99) / sqlite_p99:.0f}x"
        )
        print("mlflow invariants:", reg.check("bench") or "ok")
        follow = follow_times(server.registry_url, base, args.follow, args.poll)
        worst = max(follow)
        print(
            f"model server follow (poll {args.poll:g}s, {len(follow)} changes): "
            f"p50={percentile(follow, 0.5):.3f}s ({percentile(follow, 0.5) / args.poll:.2f} polls) "
            f"max={worst:.3f}s ({worst / args.poll:.2f} polls; target <= 2)"
        )
    finally:
        server.stop()


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--n", type=int, default=500, help="rollback cycles (default 500)")
    parser.add_argument("--dir", type=Path, help="directory for the files (default: a temporary directory)")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "mlflow"),
        default="sqlite",
        help="mlflow: also benchmark a real local mlflow server against SQLite",
    )
    parser.add_argument("--follow", type=int, default=20, help="changes for the model-server follow time")
    parser.add_argument("--poll", type=float, default=0.5, help="the model server's poll interval")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        bare = bare_commit(base / "bare.db")
        for _ in range(20):
            bare()
        bare_samples = [timed(bare) for _ in range(args.n)]

        reg = open_registry(base / "registry.db")
        rollbacks, promotes = cycles(reg, args.n)
        generations = [timed(lambda: reg.generation("bench")) for _ in range(args.n)]
        states = [timed(lambda: reg.state("bench")) for _ in range(args.n)]
        history_len = len(reg.history("bench", limit=100_000))

        base_p50 = percentile(bare_samples, 0.5)
        print(f"registry benchmark: {args.n} cycles on {base} ({history_len} audit entries at the end)")
        report("bare sqlite commit", bare_samples)
        report("rollback", rollbacks, base_p50)
        report("promote", promotes, base_p50)
        report("generation() poll", generations)
        report("state() read", states)
        problems = reg.check()
        print("invariants:", problems or "ok")
        if args.backend == "mlflow":
            bench_mlflow(args, base, rollbacks)


if __name__ == "__main__":
    main()
