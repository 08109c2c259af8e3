"""Where the worker's time per new incident goes: apply and respond, in this process, optionally profiled.

    .venv/bin/python bench/worker_cost.py [--incidents 500] [--database-url postgresql://...|temp] [--profile]

Builds the real app (bench runbooks, responses on, no threads started), records ``--incidents``
notifications that each open a new incident (as bench/webhook.py's e2e phase does), then drives the
pipeline by hand: first every apply, then every response, timing CPU and wall clock per step, and counting
the SQL statements each took (SQLite only). With ``--profile`` it prints the cProfile of both loops (top 40
by cumulative time). A profiling aid, not a target: bench/webhook.py measures the rate end to end.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.databases import database  # noqa: E402


def _body(i: int) -> bytes:
    from tests.support.payloads import alert, notification

    model = f"cost-{i}"
    return json.dumps(
        notification(
            alert(model=model, feature="f1"),
            alert(model=model, feature="g"),
            group_key=f'{{}}:{{model="{model}"}}',
        )
    ).encode()


def _count_statements() -> Counter[str]:
    """Count SQLite statements by their first words (a patch of the Tx wrapper; this process only)."""
    import receiver.store.sqlite_db as sqlite_db

    seen: Counter[str] = Counter()
    execute = sqlite_db._SQLiteTx.execute

    def counting(self: Any, sql: str, params: Any = ()) -> Any:
        seen[" ".join(sql.split())[:70]] += 1
        return execute(self, sql, params)

    sqlite_db._SQLiteTx.execute = counting  # type: ignore[method-assign]
    return seen


def run(incidents: int, url: str | None, profile: bool) -> None:
    from receiver.app import create_app
    from receiver.config import Secret, load_settings
    from tests.support.payloads import write_runbooks

    tmp = tempfile.mkdtemp(prefix="bench-worker-")
    overrides: dict[str, Any] = {"data_dir": tmp, "runbooks_dir": write_runbooks(Path(tmp) / "rb")}
    if url:
        overrides["database_url"] = url
    settings = replace(
        load_settings(env={}, overrides=overrides), webhook_token=Secret("t"), admin_token=Secret("a")
    )
    app = create_app(settings, start_worker=False)
    ctx = app.extensions["receiver"]
    try:
        for i in range(20):  # warm-up: caches, prepared statements
            ctx.store.record_notification(_body(-1 - i), f"warm-{i}")
        ctx.pipeline.drain()
        for i in range(incidents):
            ctx.store.record_notification(_body(i), f"cost-{i}")
        statements = _count_statements() if not url else Counter()
        profiler = cProfile.Profile()
        if profile:
            profiler.enable()
        c0, w0 = time.process_time(), time.perf_counter()
        applied = 0
        while ctx.pipeline.apply_next():
            applied += 1
        c1, w1 = time.process_time(), time.perf_counter()
        responded = 0
        while ctx.pipeline.respond_next():
            responded += 1
        c2, w2 = time.process_time(), time.perf_counter()
        profiler.disable()
        backend = "PostgreSQL" if url else "SQLite"
        print(
            f"{backend}: apply {applied}: {(c1 - c0) / applied * 1000:.2f} ms CPU, "
            f"{(w1 - w0) / applied * 1000:.2f} ms wall each; respond {responded}: "
            f"{(c2 - c1) / max(responded, 1) * 1000:.2f} ms CPU, "
            f"{(w2 - w1) / max(responded, 1) * 1000:.2f} ms wall"
        )
        if statements:
            print(f"SQL statements per new incident: {sum(statements.values()) / incidents:.1f}")
            for sql, n in statements.most_common(20):
                print(f"  {n / incidents:5.2f}  {sql}")
        if profile:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    finally:
        ctx.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=500)
    parser.add_argument("--database-url", help="PostgreSQL ('temp': a throwaway one); else SQLite")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with database(args.database_url) as url:
        run(args.incidents, url, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
