"""Registry latency on a real SQLite file: rollback and promote p50/p99, plus the cheap reads.

Each cycle: promote v2 (v1 becomes served-healthy), roll back (v2 marked unhealthy, v1 active), clear
v2's mark. The baseline, measured in the same run on the same directory, is one bare SQLite write
transaction (``BEGIN IMMEDIATE; UPDATE; COMMIT`` with the registry's pragmas), so the ratio shows what
the registry's rules, JSON and audit cost on top of the unavoidable commit.

    .venv/bin/python bench/registry.py [--n 500] [--dir /path/on/the/target/disk]
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
    print(f"{name:<28} n={len(samples):<5} p50={p50 * 1e3:7.3f} ms  p99={p99 * 1e3:7.3f} ms  "
          f"mean={statistics.fmean(samples) * 1e3:7.3f} ms{ratio}")


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--n", type=int, default=500, help="rollback cycles (default 500)")
    parser.add_argument("--dir", type=Path, help="directory for the files (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        bare = bare_commit(base / "bare.db")
        for _ in range(20):
            bare()
        bare_samples = [timed(bare) for _ in range(args.n)]

        reg = open_registry(base / "registry.db")
        reg.register("bench", "v1", artifact_path="/m/v1", baseline=None, healthy=True, **WHO)
        reg.register("bench", "v2", artifact_path="/m/v2", baseline=None, **WHO)
        reg.promote("bench", "v1", **WHO)
        rollbacks: list[float] = []
        promotes: list[float] = []
        for _ in range(args.n):
            promotes.append(timed(lambda: reg.promote("bench", "v2", **WHO)))
            rollbacks.append(timed(lambda: reg.rollback("bench", expected_active="v2", **WHO)))
            reg.mark_healthy("bench", "v2", **WHO)
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


if __name__ == "__main__":
    main()
