"""Store growth per incident on SQLite, before and after retention pruning.

    .venv/bin/python bench/store_growth.py [--rounds 4] [--models 50]

The real receiver (in-process, on waitress, with the repo's runbooks, responses in dry-run mode) gets
Alertmanager v4 notifications over HTTP: per round, one firing notification per model (alert contract
labels and annotations, two alerts each), then the resolved ones, then every incident is closed through the
admin API. Evidence queries go to a real Prometheus 2.42 (no model series: answers are empty vectors, so
real evidence makes the timeline somewhat larger); messages go to a real local chat/pager sink. Then the
retention job prunes as it would 100 days later. Reported: bytes used in the database (pages in use, after a
WAL checkpoint, minus the empty schema) per incident, per table, before and after, and the file size after
VACUUM.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from receiver.drill.chatsink import ChatSink  # noqa: E402
from receiver.drill.runbooks import channel_names  # noqa: E402
from tests.support.payloads import fingerprint  # noqa: E402
from tests.support.realparts import start_prometheus, wait_until  # noqa: E402
from tests.support.receiver_server import ADMIN_TOKEN, WEBHOOK_TOKEN, make_settings, start_receiver  # noqa: E402

DAY = 86400.0
ZERO = "0001-01-01T00:00:00Z"


def _alert(model: str, feature: str, status: str, starts_at: str) -> dict[str, Any]:
    labels = {
        "alertname": "ModelFeatureDriftHigh",
        "model": model,
        "feature": feature,
        "incident_type": "drift",
        "severity": "page",
        "team": "ml-risk",
    }
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": f"Feature {feature} of {model} drifted (PSI above 0.2)",
            "description": f"PSI of feature {feature} on model {model} has been above 0.2 for 10m; the live "
            "input distribution no longer matches the baseline of the serving version.",
            "value": "0.31",
            "threshold": "0.2",
            "runbook_url": "https://runbooks.example/feature-drift",
            "dashboard_url": f"https://grafana.example/d/model-overview?var-model={model}",
        },
        "startsAt": starts_at,
        "endsAt": ZERO if status == "firing" else starts_at.replace("T10", "T11"),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=max%28model_feature_psi%29",
        "fingerprint": fingerprint(labels),
    }


def _notification(model: str, status: str, starts_at: str) -> bytes:
    alerts = [_alert(model, feature, status, starts_at) for feature in ("amount", "merchant_risk")]
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}/{{severity="page"}}:{{model="{model}"}}',
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "ml-oncall",
            "groupLabels": {"model": model},
            "commonLabels": {"model": model, "incident_type": "drift", "severity": "page"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }
    ).encode()


def used_bytes(path: Path) -> tuple[int, dict[str, int]]:
    """Bytes in pages in use (file minus free pages) and per table (indexes folded into their table)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = (
            conn.execute("PRAGMA page_count").fetchone()[0]
            - conn.execute("PRAGMA freelist_count").fetchone()[0]
        )
        owners = dict(
            conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
        )
        per: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = owners.get(name, "sqlite_schema")
            per[table] = per.get(table, 0) + int(size)
    return pages * page_size, per


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--models", type=int, default=50)
    args = parser.parse_args()

    from receiver.retention import Retention
    from receiver.store import open_store

    work = Path(tempfile.mkdtemp(prefix="store-growth-"))
    prometheus = start_prometheus(work / "prometheus", {"global": {"scrape_interval": "15s"}})
    sink = ChatSink()
    secrets = work / "secrets"
    secrets.mkdir()
    (secrets / "pager-key").write_text("bench-routing-key\n")
    channels = {}
    for name in channel_names(REPO / "runbooks"):
        (secrets / f"channel-{name}").write_text(f"{sink.url}/chat/{name}\n")
        channels[name] = {"type": "slack", "url_file": str(secrets / f"channel-{name}")}
    data = work / "data"
    settings = replace(
        make_settings(data, REPO / "runbooks"),
        prometheus_url=prometheus.url,
        dry_run=True,
        channels=channels,
        pager_url=f"{sink.url}/pager",
        pager_routing_key_file=secrets / "pager-key",
        evidence_budget_seconds=5.0,
        retention_days=0.0,  # this bench prunes itself, at a chosen time
        public_url="http://receiver.example",
    )
    running = start_receiver(settings)
    store = running.context.store
    empty, _ = used_bytes(data / "receiver.db")
    hook = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    session = requests.Session()

    def settled() -> bool:
        return store.pending_count() == 0 and store.outbox.pending_count() == 0

    started = time.monotonic()
    try:
        for round_no in range(args.rounds):
            starts_at = f"2027-01-{round_no + 1:02d}T10:00:00Z"
            models = [f"model-{m:03d}" for m in range(args.models)]
            for status in ("firing", "resolved"):
                for model in models:
                    answer = session.post(
                        f"{running.url}/api/v1/alerts",
                        data=_notification(model, status, starts_at),
                        headers=hook,
                    )
                    answer.raise_for_status()
                wait_until(settled, timeout=300, interval=0.2, message=f"round {round_no} {status} settled")
            listed = session.get(
                f"{running.url}/api/v1/incidents?state=resolved&limit=500", headers=admin
            ).json()
            for incident in listed["incidents"]:
                session.post(
                    f"{running.url}/api/v1/incidents/{incident['id']}/close",
                    json={"actor": "bench"},
                    headers=admin,
                ).raise_for_status()
            wait_until(settled, timeout=300, interval=0.2, message=f"round {round_no} closed")
        counts = store.incident_counts()
    finally:
        running.stop()
        sink.stop()
        prometheus.stop()
    incidents = sum(n for (state, _), n in counts.items() if state == "closed")
    elapsed = time.monotonic() - started

    before, tables_before = used_bytes(data / "receiver.db")
    pruner = open_store(data, clock=lambda: time.time() + 100 * DAY)
    try:
        report = Retention(pruner, 90 * DAY, clock=pruner.clock).prune()
    finally:
        pruner.close()
    after, tables_after = used_bytes(data / "receiver.db")
    conn = sqlite3.connect(data / "receiver.db", isolation_level=None)
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    vacuumed = (data / "receiver.db").stat().st_size

    shutil.rmtree(work, ignore_errors=True)
    print(f"incidents closed: {incidents} ({args.rounds} rounds x {args.models} models, {elapsed:.0f}s)")
    print(f"pruned: {report.summary()}")
    print(f"empty schema: {empty} bytes")
    print(f"before pruning: {(before - empty) / incidents:,.0f} bytes per incident ({before:,} bytes in use)")
    print(f"after pruning:  {(after - empty) / incidents:,.0f} bytes per incident ({after:,} bytes in use)")
    print(f"file after VACUUM: {vacuumed:,} bytes ({(vacuumed - empty) / incidents:,.0f} per incident)")
    print("per table, bytes per incident (before -> after):")
    for table in sorted(tables_before, key=lambda t: -tables_before[t]):
        b, a = tables_before[table] / incidents, tables_after.get(table, 0) / incidents
        if b >= 1:
            print(f"  {table:20s} {b:8,.0f} -> {a:8,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
