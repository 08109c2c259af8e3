"""Traffic for a drill: the demo traffic generator in a restartable thread, and a broken-upstream client."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import requests

from model_server.traffic import TrafficConfig, TrafficReport, run_traffic

__all__ = ["NullFeatureTraffic", "TrafficThread"]

#: Upper bound on one traffic run; a drill stops it long before.
MAX_RUN_SECONDS = 6 * 3600.0


class TrafficThread:
    """``run_traffic`` in a daemon thread; ``restart(**changes)`` swaps the config (e.g. adds drift)."""

    def __init__(self, config: TrafficConfig) -> None:
        self.config = replace(config, duration=config.duration or MAX_RUN_SECONDS)
        self.reports: list[TrafficReport] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.config.validate()
        self._stop = threading.Event()
        stop = self._stop
        config = self.config

        def run() -> None:
            try:
                self.reports.append(run_traffic(config, stop))
            except Exception as exc:  # surfaced in the report; the drill's checks decide the outcome
                self.errors.append(f"{type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=run, name=f"traffic-{config.url}", daemon=True)
        self._thread.start()

    def restart(self, **changes: Any) -> None:
        self.stop()
        self.config = replace(self.config, **changes)
        self.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.timeout + 5)
            self._thread = None


class NullFeatureTraffic:
    """A client whose upstream is broken: every request carries ``feature`` as null (JSON ``null``).

    Rows come from the demo data set, so the other features stay realistic.
    """

    def __init__(self, url: str, feature: str, rate: float, seed: int = 0) -> None:
        self.url, self.feature, self.rate, self.seed = url.rstrip("/"), feature, rate, seed
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from sklearn.datasets import load_breast_cancer

        from model_server.demo import feature_names

        names = feature_names()
        if self.feature not in names:
            raise ValueError(f"unknown feature {self.feature!r}")
        X = load_breast_cancer().data
        rng = random.Random(self.seed)
        session = requests.Session()

        def run() -> None:
            start = time.monotonic()
            i = 0
            while not self._stop.is_set():
                due = start + i / self.rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                row: Mapping[str, Any] = dict(zip(names, X[rng.randrange(len(X))].tolist(), strict=True))
                body = {"features": {**row, self.feature: None}}
                try:
                    ok = session.post(self.url + "/predict", json=body, timeout=5).status_code == 200
                except requests.RequestException:
                    ok = False
                self.sent += 1
                self.failed += 0 if ok else 1
                i += 1
            session.close()

        self._thread = threading.Thread(target=run, name="null-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
