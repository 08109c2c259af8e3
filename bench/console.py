"""Console benchmark: the incident page's server time and size for an incident with 500 timeline entries
and 10 charts (9 evidence queries and the verify query, each a real range query to a real Prometheus on
loopback holding 2 h of backfilled model metrics), against the JSON API for the same incident in the same
run (the baseline: same store, same app, no charts, no templates).

Both are measured in-process through Flask's test client, so the figure is the server's own time (store
reads, range queries, SVG, Jinja) without client or socket overhead. Targets: under 150 ms, under 300 KB.

    .venv/bin/python bench/console.py [--requests 30] [--entries 500]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EVIDENCE = [
    ("max PSI", 'max(model_feature_psi{model="{{ labels.model }}"})'),
    ("PSI by feature", 'max by (feature) (model_feature_psi{model="{{ labels.model }}"})'),
    ("request rate", 'sum(rate(model_requests_total{model="{{ labels.model }}"}[5m]))'),
    (
        "error ratio",
        'sum(rate(model_requests_total{model="{{ labels.model }}",outcome="error"}[5m]))'
        ' / sum(rate(model_requests_total{model="{{ labels.model }}"}[5m]))',
    ),
    ("requests by version", 'sum by (version) (rate(model_requests_total{model="{{ labels.model }}"}[5m]))'),
    (
        "p99 latency",
        "histogram_quantile(0.99, sum by (le) (rate("
        'model_request_latency_seconds_bucket{model="{{ labels.model }}"}[5m])))',
    ),
    ("AUC", 'model_auc{model="{{ labels.model }}"}'),
    ("AUC baseline", 'model_auc_baseline{model="{{ labels.model }}"}'),
    ("input problems", 'sum by (feature) (rate(model_input_problems_total{model="{{ labels.model }}"}[5m]))'),
]


def _runbook(directory: Path) -> None:
    directory.mkdir(parents=True)
    evidence = "\n".join(f"  - {{name: {name}, query: '{query}'}}" for name, query in EVIDENCE)
    (directory / "drift.yml").write_text(
        "id: drift-bench\ntitle: Feature drift (bench)\n"
        "match: ['incident_type=\"drift\"']\ngroup_by: [model]\n"
        "owners: {incident_commander: ml-oncall}\nseverity:\n  - {level: SEV2}\n"
        "contain:\n  - {id: split, action: traffic_split, to: last_known_good, weight: 50}\n"
        f"evidence:\n{evidence}\n"
        "verify: {query: 'max(model_feature_psi{model=\"{{ labels.model }}\"}) < 0.2',"
        " for: 5m, timeout: 45m}\n"
    )


def _incident(store: Any, clock: list[float], opened: float, resolved: float, entries: int) -> int:
    clock[0] = opened
    labels = {"alertname": "FeatureDrift", "incident_type": "drift", "model": "fraud", "feature": "f2"}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(opened - 60))

    def apply(writer: Any) -> list[dict[str, Any]]:
        incident = writer.create_incident(
            runbook_id="drift-bench",
            incident_key="fraud",
            title="Feature drift",
            model="fraud",
            group_labels={"model": "fraud"},
            severity="SEV2",
        )
        writer.record_alert(
            fingerprint="fp1",
            alertname="FeatureDrift",
            labels=labels,
            annotations={"summary": "PSI of f2 above 0.2", "value": "0.31"},
            status="firing",
            starts_at=stamp,
            ends_at=None,
            generator_url="",
        )
        writer.upsert_incident_alert(incident.id, "fp1", "firing", stamp, None)
        writer.add_timeline(incident.id, "opened", "Opened by FeatureDrift under runbook drift-bench")
        return []

    store.apply(store.record_notification(b"{}"), apply)
    kinds = ("action", "message", "verification", "alert_firing", "evidence")
    for n in range(entries - 3):
        clock[0] = opened + (resolved - opened) * n / entries
        kind = kinds[n % len(kinds)]
        data: dict[str, Any] = {"n": n}
        if kind == "action":
            data = {
                "event": "succeeded" if n % 50 == 0 else "attempt",
                "action": "traffic_split",
                "phase": "contain",
                "step_id": "split",
                "summary": "fraud: 50% of traffic to v1",
            }
        store.add_timeline(1, kind, f"{kind} entry {n}: PSI of f2 at 0.{n % 97:02d}, check {n}", data)
    clock[0] = opened + (resolved - opened) * 0.4
    store.record_contained(1, "verified: max PSI under 0.2 for 5m")
    clock[0] = resolved
    store.transition(1, "resolved", "Resolved: all 1 alert(s) resolved")
    clock[0] = time.time()
    return 1


def _measure(
    client: Any, path: str, n: int, headers: dict[str, str] | None = None
) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path, headers=headers or {})
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        size = len(response.data)
    return times, size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30, help="requests per page (default 30)")
    parser.add_argument("--entries", type=int, default=500, help="timeline entries (default 500)")
    args = parser.parse_args()

    from model_registry import open_registry
    from receiver.app import create_app
    from receiver.store import open_store
    from tests.support.realparts import start_prometheus
    from tests.support.receiver_server import ADMIN_TOKEN, make_settings
    from tests.support.scenarios import default_scenario, write_tsdb_blocks

    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    scenario = default_scenario(time.time() - 300, hours=2.0)
    print(f"backfilling 2 h of model metrics into Prometheus ({work}) ...", flush=True)
    write_tsdb_blocks(scenario.write_openmetrics(work / "metrics.om"), work / "prom" / "tsdb")
    prometheus = start_prometheus(
        work / "prom",
        {"global": {"evaluation_interval": "15s"}},
        extra_args=["--storage.tsdb.retention.time=30d"],
    )
    try:
        registry_db = work / "registry.db"
        reg = open_registry(str(registry_db))
        for version in ("v1", "v2"):
            reg.register(
                "fraud",
                version,
                artifact_path=f"/m/{version}",
                baseline=None,
                metadata={},
                actor="bench",
                reason="setup",
                healthy=True,
            )
            reg.promote("fraud", version, actor="bench", reason="setup")
        _runbook(work / "runbooks")
        clock = [time.time()]
        store = open_store(work / "data", clock=lambda: clock[0])
        drift = next(e for e in scenario.events if e.kind == "psi_drift")
        _incident(store, clock, drift.start + 120, drift.end + 300, args.entries)
        settings = replace(
            make_settings(
                work / "data",
                work / "runbooks",
                responses=False,
                prometheus_url=prometheus.url,
                registry_db=registry_db,
            ),
        )
        app = create_app(settings, store=store, start_worker=False)
        client = app.test_client()
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        client.post("/login", data={"csrf": csrf.group(1), "token": ADMIN_TOKEN, "next": "/"})

        first = client.get("/incidents/1").text
        charts, drawn = first.count("<svg "), first.count("<polyline ")
        entries = len(store.get_incident(1).timeline)
        _measure(client, "/incidents/1", 3)  # warm up (templates compiled, connections open)
        api_ms, api_size = _measure(
            client, "/api/v1/incidents/1", args.requests, {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        page_ms, page_size = _measure(client, "/incidents/1", args.requests)
        review_ms, review_size = _measure(client, "/incidents/1/review", max(5, args.requests // 3))
        app.extensions["receiver"].close()
        store.close()
    finally:
        prometheus.stop()

    def row(name: str, times: list[float], size: int) -> str:
        q = statistics.quantiles(times, n=10)
        return (
            f"{name:28} {statistics.median(times):9.1f} {q[-1]:9.1f} {size / 1024:9.1f} "
            f"{statistics.median(times) / statistics.median(api_ms):8.1f}x"
        )

    print(
        f"incident: {entries} timeline entries, {charts} charts ({drawn} series drawn), "
        f"Prometheus {prometheus.url} with backfilled data"
    )
    print(f"{'':28} {'p50 ms':>9} {'p90 ms':>9} {'KB':>9} {'vs API':>9}")
    print(row("JSON API (baseline)", api_ms, api_size))
    print(row("console incident page", page_ms, page_size))
    print(row("console review page", review_ms, review_size))
    ok = statistics.median(page_ms) < 150 and page_size < 300 * 1024
    print(f"target (incident page p50 < 150 ms, < 300 KB): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
