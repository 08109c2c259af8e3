"""Per-request cost of the model_server instrumentation with 30 features, against a bare predict.

Run: ``.venv/bin/python bench/instrumentation.py [--n 20000] [--repeats 5]``

Measures, in the same process and run:

* ``predict``: an uninstrumented single-row ``predict_proba`` of the demo v1 model (scaler + logistic
  regression), which is the baseline;
* ``instrumentation``: what a server adds per request: ``check_input`` on the request's feature dict
  (30 features; schema, null and range checks) plus ``observe`` (latency and score histograms, outcome
  counter, the PSI window, the pending-label join);
* ``scrape``: one ``generate_latest`` of the registry (per scrape, not per request).

Prints microseconds per call (median over repeats) and the ratio instrumentation / predict. The target
is <= 25 us added per request.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from model_registry import compute_baseline
from model_server.demo import load_data, train_versions
from model_server.instrumentation import ServingMetrics


def per_call_us(fn: Callable[[int], object], n: int, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter_ns() - start) / n / 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    data = load_data()
    model = train_versions(data, 0)["v1"]
    scores = model.predict_proba(data.X_val)[:, 1]
    baseline = compute_baseline(data.X_val, scores, data.y_val, data.feature_names)
    registry = CollectorRegistry()
    instruments = ServingMetrics(registry).model("bench", latency_buckets=[0.001, 0.01, 0.1, 1.0])
    v1 = instruments.version("v1", baseline=baseline, metadata={"slo_latency_seconds": 0.1})
    instruments.set_serving(active="v1", traffic={"v1": 100.0})
    X = np.concatenate([data.X_train, data.X_val])
    rows = [X[i % len(X)].reshape(1, -1) for i in range(1024)]
    dicts = [dict(zip(data.feature_names, r.ravel().tolist(), strict=True)) for r in rows]
    ids = [f"r{i}" for i in range(args.n)]

    def predict(i: int) -> object:
        return model.predict_proba(rows[i & 1023])

    def instrument(i: int) -> object:
        check = v1.check_input(dicts[i & 1023])
        v1.observe(check.row, 0.5, 0.002, request_id=ids[i])
        return check

    def instrument_no_label(i: int) -> object:
        check = v1.check_input(dicts[i & 1023])
        v1.observe(check.row, 0.5, 0.002)
        return check

    predict_us = per_call_us(predict, args.n // 4, args.repeats)
    added_us = per_call_us(instrument, args.n, args.repeats)
    added_no_label_us = per_call_us(instrument_no_label, args.n, args.repeats)
    scrape_us = per_call_us(lambda _i: generate_latest(registry), 200, args.repeats)
    print(f"features: {len(data.feature_names)}, window: {v1.drift.window if v1.drift else 0}")
    print(f"predict (uninstrumented, 1 row):        {predict_us:8.1f} us")
    print(f"instrumentation per request:            {added_us:8.1f} us  (target <= 25 us)")
    print(f"  without the pending-label join:       {added_no_label_us:8.1f} us")
    print(f"ratio instrumentation / predict:        {added_us / predict_us:8.3f}")
    print(f"scrape (generate_latest, 30 features):  {scrape_us:8.1f} us per scrape")


if __name__ == "__main__":
    main()
