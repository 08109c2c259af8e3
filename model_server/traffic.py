"""Traffic generator for the demo model server: paced requests from the data set, optional drift and labels.

``run_traffic(TrafficConfig(...))`` is what drills call (in a thread; pass ``stop`` to end early); the
``model-traffic`` CLI wraps it. Every run is bounded by ``count`` and/or ``duration`` (one is required),
and only loopback URLs are accepted unless ``allow_remote`` is set.

Drift ``{feature: k}`` adds ``k`` standard deviations (of the whole data set) to that feature of every
row. Labels: with ``label_delay`` set, a ``label_fraction`` share of predictions get their true label
posted to ``/feedback`` after the delay (the run waits for those still due, bounded by the delay).
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import math
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np
import requests

__all__ = ["TrafficConfig", "TrafficError", "TrafficReport", "main", "run_traffic"]

DEFAULT_URL = "http://127.0.0.1:8081"
MAX_DURATION_SECONDS = 24 * 3600.0
PROMPTS = (
    "How do I reset my password?",
    "Summarise this ticket.",
    "What is the refund policy?",
    "Write a haiku about incidents.",
    "Explain PSI in one sentence.",
)


class TrafficError(ValueError):
    """The traffic configuration is invalid (the message names every problem)."""


@dataclass(frozen=True)
class TrafficConfig:
    url: str = DEFAULT_URL
    rate: float = 20.0
    duration: float | None = None
    count: int | None = None
    drift: Mapping[str, float] = field(default_factory=dict)
    label_delay: float | None = None
    label_fraction: float = 1.0
    text: bool = False
    allow_remote: bool = False
    seed: int = 0
    timeout: float = 5.0
    workers: int = 16

    def validate(self) -> None:
        problems: list[str] = []
        if self.count is None and self.duration is None:
            problems.append("set count and/or duration: unbounded traffic is refused")
        if self.count is not None and self.count < 1:
            problems.append(f"count must be >= 1, got {self.count}")
        if self.duration is not None and not 0 < self.duration <= MAX_DURATION_SECONDS:
            problems.append(f"duration must be in (0, {MAX_DURATION_SECONDS:g}] seconds, got {self.duration}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            problems.append(f"rate must be a positive number of requests per second, got {self.rate}")
        if self.label_delay is not None and not 0 <= self.label_delay <= 3600:
            problems.append(f"label_delay must be in [0, 3600] seconds, got {self.label_delay}")
        if not 0 <= self.label_fraction <= 1:
            problems.append(f"label_fraction must be in [0, 1], got {self.label_fraction}")
        if not 0 < self.timeout <= 60 or not 1 <= self.workers <= 256:
            problems.append("timeout must be in (0, 60] and workers in [1, 256]")
        for feature, k in self.drift.items():
            if not math.isfinite(k):
                problems.append(f"drift of {feature!r} must be a finite number of standard deviations")
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            problems.append(f"url must be http(s)://host:port, got {self.url!r}")
        elif not self.allow_remote and not _is_loopback(parsed.hostname):
            problems.append(
                f"{parsed.hostname} is not a loopback address (pass allow_remote / --allow-remote)"
            )
        if problems:
            raise TrafficError("invalid traffic config: " + "; ".join(problems))


@dataclass
class TrafficReport:
    sent: int = 0
    ok: int = 0
    server_errors: int = 0
    rejected: int = 0
    transport_errors: int = 0
    labels_sent: int = 0
    labels_failed: int = 0
    elapsed_seconds: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _LabelQueue:
    """Feedback posts due at a time, sent by one thread."""

    def __init__(
        self, session: requests.Session, url: str, timeout: float, report: TrafficReport, lock: threading.Lock
    ) -> None:
        self._heap: list[tuple[float, str, int]] = []
        self._cond = threading.Condition()
        self._session, self._url, self._timeout = session, url, timeout
        self._report, self._lock = report, lock
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="traffic-labels", daemon=True)
        self._thread.start()

    def put(self, due: float, request_id: str, label: int) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, request_id, label))
            self._cond.notify()

    def close(self, stop: threading.Event) -> None:
        """Send what is still due (unless ``stop`` is set), then end the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        while self._thread.is_alive() and not stop.is_set():
            self._thread.join(timeout=0.1)
        with self._cond:
            self._heap.clear()
            self._cond.notify()
        self._thread.join(timeout=self._timeout + 1)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        if self._closing:
                            return
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        _, request_id, label = heapq.heappop(self._heap)
                        break
                    self._cond.wait(timeout=wait)
            try:
                resp = self._session.post(
                    self._url, json={"request_id": request_id, "label": label}, timeout=self._timeout
                )
                sent = resp.status_code == 200
            except requests.RequestException:
                sent = False
            with self._lock:
                if sent:
                    self._report.labels_sent += 1
                else:
                    self._report.labels_failed += 1


def run_traffic(config: TrafficConfig, stop: threading.Event | None = None) -> TrafficReport:
    """Send paced traffic as configured and return counts; ``stop`` ends the run early."""
    config.validate()
    from model_server.demo import feature_names

    stop = stop or threading.Event()
    names = feature_names()
    unknown = sorted(set(config.drift) - set(names))
    if unknown:
        raise TrafficError(f"unknown drift feature(s) {unknown}; known: {names}")
    X, y = _dataset()
    X = X + np.array([config.drift.get(n, 0.0) for n in names]) * X.std(axis=0)
    rng = random.Random(config.seed)
    base = config.url.rstrip("/")
    report, lock = TrafficReport(), threading.Lock()
    versions: Counter[str] = Counter()
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=config.workers)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    labels = (
        _LabelQueue(session, base + "/feedback", config.timeout, report, lock)
        if config.label_delay is not None and not config.text
        else None
    )
    run_id = f"{config.seed}-{int(time.time() * 1000)}"

    def send(i: int, row_index: int, give_label: bool) -> None:
        body: dict[str, Any]
        if config.text:
            url, body = base + "/generate", {"prompt": PROMPTS[row_index % len(PROMPTS)]}
        else:
            body = {
                "request_id": f"t{run_id}-{i}",
                "features": dict(zip(names, X[row_index].tolist(), strict=True)),
            }
            url = base + "/predict"
        try:
            resp = session.post(url, json=body, timeout=config.timeout)
        except requests.RequestException:
            with lock:
                report.transport_errors += 1
            return
        with lock:
            if resp.status_code == 200:
                report.ok += 1
                versions[str(resp.json().get("version"))] += 1
            elif resp.status_code >= 500:
                report.server_errors += 1
            else:
                report.rejected += 1
        if resp.status_code == 200 and labels is not None and give_label:
            labels.put(
                time.monotonic() + (config.label_delay or 0.0), str(body["request_id"]), int(y[row_index])
            )

    start = time.monotonic()
    deadline = start + config.duration if config.duration is not None else math.inf
    limit = config.count if config.count is not None else sys.maxsize
    with ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="traffic") as pool:
        i = 0
        while i < limit and not stop.is_set():
            due = start + i / config.rate
            now = time.monotonic()
            if due >= deadline or now >= deadline:
                break
            if due > now and stop.wait(due - now):
                break
            pool.submit(send, i, rng.randrange(len(X)), rng.random() < config.label_fraction)
            report.sent += 1
            i += 1
    if labels is not None:
        labels.close(stop)
    session.close()
    report.elapsed_seconds = time.monotonic() - start
    report.versions = dict(versions)
    return report


def _dataset() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return np.asarray(data.data, dtype=float), np.asarray(data.target, dtype=int)


def _drift_arg(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--drift expects FEATURE=K (K in standard deviations), got {text!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--duration", type=float, help="seconds (this and/or --count is required)")
    parser.add_argument("--count", type=int, help="number of requests")
    parser.add_argument(
        "--drift",
        type=_drift_arg,
        action="append",
        default=[],
        metavar="FEATURE=K",
        help="shift FEATURE by K standard deviations (repeatable)",
    )
    parser.add_argument("--label-delay", type=float, help="post the true label to /feedback after this delay")
    parser.add_argument("--label-fraction", type=float, default=1.0)
    parser.add_argument("--text", action="store_true", help="send prompts to /generate instead")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --url")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = TrafficConfig(
        url=args.url,
        rate=args.rate,
        duration=args.duration,
        count=args.count,
        drift=dict(args.drift),
        label_delay=args.label_delay,
        label_fraction=args.label_fraction,
        text=args.text,
        allow_remote=args.allow_remote,
        seed=args.seed,
    )
    try:
        report = run_traffic(config)
    except TrafficError as exc:
        print(f"model-traffic: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(report.to_dict(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
