"""Scenario generator for the backtester: metric-contract history with injected incidents and benign noise.

``default_scenario(end=...)`` lays out a 6 h timeline for two models at 15 s resolution:

* incidents (labelled): error burst, latency spike, PSI drift on one feature, prediction mean shift (after a
  retraining), AUC drop with plenty of labels, toxicity burst, null-input burst, target down;
* benign noise (not labelled, the rules must stay quiet): a low-traffic night at the start where ratios,
  AUC and PSI are noisy; diurnal traffic; short blips of errors, latency, PSI, toxicity, nulls and a
  45 s scrape failure; a retraining (new version, new baseline: the prediction distribution moves but
  matches its own baseline).

The harder 24 h corpus (quiet nights on every ratio, an LLM at 0.2-1 outputs/s, slow burns, label gaps, a
good and a bad release) is laid out in :mod:`tests.support.hard_corpus` with the same event kinds
(``bad_release``, ``slow_burn``, ``release``, ``label_gap`` and per-event parameters among them).

``Scenario.write_openmetrics(path)`` writes OpenMetrics text (timestamps in seconds, counters with
``_total``, ``# EOF``) and :func:`write_tsdb_blocks` turns it into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics`` for a real Prometheus to serve.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = [
    "Event",
    "ModelSpec",
    "Scenario",
    "default_scenario",
    "main",
    "write_tsdb_blocks",
]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
KINDS = ("null", "out_of_range", "schema")
_BETA_CONCENTRATION = 10.0

#: incident kinds the generator can inject → the alert contract's incident_type
INCIDENT_TYPES = {
    "error_burst": "errors",
    "latency_spike": "latency",
    "psi_drift": "drift",
    "prediction_shift": "prediction_shift",
    "auc_drop": "auc_drop",
    "toxicity_burst": "toxicity",
    "null_burst": "data_quality",
    "target_down": "availability",
    "bad_release": "errors",  # a new version (params: version, error_p) serving until the event ends
    # a new version whose scores are off its own baseline (params: version, live_score_mean), until the end
    "bad_release_scores": "prediction_shift",
    "slow_burn": "errors",  # error ratio params["factor"] x the SLO for hours (the ticket tier)
}
NOISE_KINDS = (
    "error_blip",
    "latency_blip",
    "psi_blip",
    "toxicity_blip",
    "null_blip",
    "target_flap",
    "night",
    "retrain",
    "release",
    "label_gap",
)
#: events that switch the serving version: retrain/release for good, a bad release while active
_VERSION_KINDS = ("retrain", "release", "bad_release", "bad_release_scores")
_BAD_RELEASES = ("bad_release", "bad_release_scores")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    base_rps: float = 6.0
    slo_latency_seconds: float = 0.3
    slo_error_ratio: float = 0.01
    features: tuple[str, ...] = ("f1", "f2", "f3")
    latency_median: float = 0.06
    score_mean: float = 0.3
    auc: float = 0.86
    diurnal: float = 0.25  # traffic swings between base_rps * (1 - 2 diurnal) and base_rps


@dataclass(frozen=True)
class Event:
    """An injected change on ``model`` from ``start`` to ``end`` (Unix seconds). ``kind`` is one of
    :data:`INCIDENT_TYPES` (labelled) or :data:`NOISE_KINDS` (benign)."""

    kind: str
    model: str
    start: float
    end: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.kind in INCIDENT_TYPES

    def active(self, ts: float) -> bool:
        return self.start <= ts < self.end


def _fmt(value: float) -> str:
    """Floats the way prometheus_client writes them (``1.0``, ``0.3``, ``+Inf``)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _beta_params(mean: float) -> tuple[float, float]:
    return mean * _BETA_CONCENTRATION, (1 - mean) * _BETA_CONCENTRATION


@functools.lru_cache(maxsize=32)
def _beta_stats(mean: float) -> tuple[float, float]:
    std = math.sqrt(mean * (1 - mean) / (_BETA_CONCENTRATION + 1))
    a, b = _beta_params(mean)
    sample = np.random.default_rng(0).beta(a, b, 200_000)
    return std, float((sample > 0.5).mean())


class _Series:
    """Samples of one family, grouped per label set, in time order."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}

    def add(self, sample_name: str, labels: dict[str, str], ts: float, value: float) -> None:
        key = (sample_name, tuple(sorted(labels.items())))
        self.samples.setdefault(key, []).append((ts, value))


@dataclass
class Scenario:
    """A generated history: ``models`` from ``start`` to ``end`` every ``step`` seconds with ``events``."""

    start: float
    end: float
    models: list[ModelSpec]
    events: list[Event]
    step: float = 15.0
    seed: int = 7

    @property
    def incidents(self) -> list[dict[str, Any]]:
        """The labelled incidents, in the shape ``receiver backtest --incidents`` reads."""
        return [
            {
                "name": f"{e.kind}-{e.model}-{index}",
                "model": e.model,
                "incident_type": INCIDENT_TYPES[e.kind],
                "start": e.start,
                "end": e.end,
            }
            for index, e in enumerate(self.events)
            if e.labelled
        ]

    @property
    def blips(self) -> list[Event]:
        return [e for e in self.events if e.kind.endswith(("_blip", "_flap"))]

    def write_incidents(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({"incidents": self.incidents}, sort_keys=False))
        return path

    def _events(self, model: str, ts: float) -> dict[str, Event]:
        return {e.kind: e for e in self.events if e.model == model and e.active(ts)}

    def _serving(self, spec: ModelSpec, ts: float) -> tuple[str, float, float]:
        """(version, baseline score mean, baseline AUC) serving at ``ts``: retrains and releases stay,
        a bad release only while its event lasts (then it is rolled back)."""
        version, score_mean, auc_baseline = "v1", spec.score_mean, spec.auc + 0.005
        for e in sorted(self.events, key=lambda e: e.start):
            if e.model != spec.name or e.kind not in _VERSION_KINDS or ts < e.start:
                continue
            if e.kind in _BAD_RELEASES and not e.active(ts):
                continue
            version = str(e.params.get("version", "v2"))
            score_mean = float(e.params.get("score_mean", score_mean))
            auc_baseline = float(e.params.get("auc_baseline", auc_baseline))
        return version, score_mean, auc_baseline

    def _simulate(self) -> list[_Series]:
        rng = np.random.default_rng(self.seed)
        fam = {
            name: _Series(name, kind)
            for name, kind in (
                ("model_request_duration_seconds", "histogram"),
                ("model_requests", "counter"),
                ("model_prediction_score", "histogram"),
                ("model_prediction_baseline", "gauge"),
                ("model_feature_psi", "gauge"),
                ("model_input_problems", "counter"),
                ("model_auc", "gauge"),
                ("model_auc_baseline", "gauge"),
                ("model_labeled_samples", "counter"),
                ("model_outputs", "counter"),
                ("model_toxic_outputs", "counter"),
                ("model_guardrail_level", "gauge"),
                ("model_serving_info", "gauge"),
                ("model_traffic_weight", "gauge"),
                ("model_slo_latency_seconds", "gauge"),
                ("model_slo_error_ratio", "gauge"),
                ("up", "gauge"),
            )
        }
        steps = int((self.end - self.start) // self.step) + 1
        counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

        def bump(family: str, sample: str, labels: dict[str, str], increment: float, ts: float) -> None:
            """Counters are cumulative per series (the labels include model and version)."""
            key = (sample, tuple(sorted(labels.items())))
            counters[key] = counters.get(key, 0.0) + increment
            fam[family].add(sample, labels, ts, counters[key])

        def gauge(family: str, labels: dict[str, str], ts: float, value: float) -> None:
            fam[family].add(family, labels, ts, value)

        for spec in self.models:
            instance = f"{spec.name}:8000"
            last_auc: dict[str, float] = {}
            for index in range(steps):
                ts = self.start + index * self.step
                active = self._events(spec.name, ts)
                version, score_mean, auc_baseline = self._serving(spec, ts)
                down = "target_down" in active or "target_flap" in active
                fam["up"].add(
                    "up",
                    {"job": "model-server", "instance": instance, "model": spec.name},
                    ts,
                    0.0 if down else 1.0,
                )
                if down:
                    continue
                labels = {"model": spec.name, "version": version}
                night = active.get("night")
                phase = 2 * math.pi * (ts - self.start) / max(self.end - self.start, 1.0)
                rps = spec.base_rps * (1 - spec.diurnal + spec.diurnal * math.sin(phase))
                if night is not None:
                    rps = float(night.params.get("rps", 0.12))
                n = int(rng.poisson(rps * self.step))
                noisy = night.params if night is not None else {}

                # --- errors
                error_p = 0.002
                if night is not None:
                    # a few timeouts among a handful of requests: a noisy ratio
                    error_p = float(noisy.get("error_p", 0.08))
                if "slow_burn" in active:
                    error_p = float(active["slow_burn"].params["factor"]) * spec.slo_error_ratio
                if "bad_release" in active:
                    error_p = float(active["bad_release"].params.get("error_p", 0.2))
                if "error_burst" in active:
                    error_p = float(active["error_burst"].params.get("error_p", 0.2))
                if "error_blip" in active:
                    error_p = 0.5
                errors = int(rng.binomial(n, error_p))
                bump("model_requests", "model_requests_total", {**labels, "outcome": "ok"}, n - errors, ts)
                bump("model_requests", "model_requests_total", {**labels, "outcome": "error"}, errors, ts)

                # --- latency histogram
                median = spec.latency_median
                slow = active.get("latency_spike") or active.get("latency_blip")
                if slow is not None:
                    median = float(slow.params.get("median", 0.6))
                durations = rng.lognormal(math.log(median), 0.45, n)
                slow_p = float(noisy.get("slow_p", 0.0))  # cold caches at night: a few slow requests
                if slow_p and n:
                    durations = np.where(rng.random(n) < slow_p, durations * 10, durations)
                self._histogram(
                    bump, "model_request_duration_seconds", labels, durations, LATENCY_BUCKETS, ts
                )

                # --- prediction scores against the serving version's baseline
                live_mean = score_mean
                if "prediction_shift" in active:
                    live_mean = float(active["prediction_shift"].params.get("score_mean", 0.8))
                if "bad_release_scores" in active:
                    live_mean = float(active["bad_release_scores"].params.get("live_score_mean", 0.8))
                scores = rng.beta(*_beta_params(live_mean), n)
                self._histogram(bump, "model_prediction_score", labels, scores, SCORE_BUCKETS, ts)
                std, positive_rate = _beta_stats(score_mean)
                for stat, value in (("mean", score_mean), ("stddev", std), ("positive_rate", positive_rate)):
                    gauge("model_prediction_baseline", {**labels, "stat": stat}, ts, value)

                # --- PSI per feature
                for feature in spec.features:
                    psi = abs(0.03 + rng.normal(0, 0.01 if not night else 0.08))
                    drift = active.get("psi_drift")
                    if drift is not None and drift.params.get("feature", spec.features[1]) == feature:
                        psi = 0.35 + rng.normal(0, 0.02)
                    blip = active.get("psi_blip")
                    if blip is not None and blip.params.get("feature", spec.features[0]) == feature:
                        psi = 0.3
                    fam["model_feature_psi"].add(
                        "model_feature_psi", {**labels, "feature": feature}, ts, max(psi, 0.001)
                    )

                # --- input problems per feature and kind
                for feature in spec.features:
                    for kind in KINDS:
                        p = float(noisy.get("null_p", 0.002)) if kind == "null" else 0.002
                        for name in ("null_burst", "null_blip"):
                            event = active.get(name)
                            if (
                                kind == "null"
                                and event is not None
                                and event.params.get("feature", spec.features[0]) == feature
                            ):
                                p = 0.4
                        bump(
                            "model_input_problems",
                            "model_input_problems_total",
                            {**labels, "feature": feature, "kind": kind},
                            int(rng.binomial(n, p)),
                            ts,
                        )

                # --- AUC from delayed labels (a label gap: no labels, the AUC gauge stays frozen)
                gap = "label_gap" in active
                labelled = 0 if gap else int(rng.binomial(n, 0.5))
                bump("model_labeled_samples", "model_labeled_samples_total", labels, labelled, ts)
                auc = auc_baseline - 0.01 + rng.normal(0, 0.06 if night is not None else 0.004)
                drop = active.get("auc_drop")
                if drop is not None and ts >= drop.start + 60 * float(drop.params.get("label_delay_min", 0)):
                    auc = auc_baseline - float(drop.params.get("drop", 0.12)) + rng.normal(0, 0.004)
                if gap and version in last_auc:
                    auc = last_auc[version]
                last_auc[version] = auc
                fam["model_auc"].add("model_auc", labels, ts, min(auc, 1.0))
                fam["model_auc_baseline"].add("model_auc_baseline", labels, ts, auc_baseline)

                # --- LLM safety
                toxic_p = float(noisy.get("toxic_p", 0.015)) if night is not None else 0.002
                if "toxicity_burst" in active:
                    toxic_p = float(active["toxicity_burst"].params.get("toxic_p", 0.08))
                if "toxicity_blip" in active:
                    toxic_p = 0.1
                bump("model_outputs", "model_outputs_total", labels, n, ts)
                toxic = int(rng.binomial(n, toxic_p))
                bump("model_toxic_outputs", "model_toxic_outputs_total", labels, toxic, ts)

                # --- serving state and objectives
                fam["model_guardrail_level"].add("model_guardrail_level", labels, ts, 1.0)
                gauge("model_serving_info", {**labels, "mode": "normal", "role": "active"}, ts, 1.0)
                fam["model_traffic_weight"].add("model_traffic_weight", labels, ts, 1.0)
                fam["model_slo_latency_seconds"].add(
                    "model_slo_latency_seconds", labels, ts, spec.slo_latency_seconds
                )
                fam["model_slo_error_ratio"].add("model_slo_error_ratio", labels, ts, spec.slo_error_ratio)
        return list(fam.values())

    @staticmethod
    def _histogram(
        bump: Any,
        family: str,
        labels: dict[str, str],
        values: np.ndarray,
        bounds: tuple[float, ...],
        ts: float,
    ) -> None:
        for bound in bounds:
            bump(family, f"{family}_bucket", {**labels, "le": _fmt(bound)}, int((values <= bound).sum()), ts)
        bump(family, f"{family}_bucket", {**labels, "le": "+Inf"}, len(values), ts)
        bump(family, f"{family}_count", labels, len(values), ts)
        bump(family, f"{family}_sum", labels, float(values.sum()), ts)

    def openmetrics_lines(self) -> Iterator[str]:
        for family in self._simulate():
            yield f"# TYPE {family.name} {family.kind}\n"
            for (sample, labels), points in family.samples.items():
                label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                prefix = f"{sample}{{{label_text}}} " if label_text else f"{sample} "
                for ts, value in points:
                    yield f"{prefix}{_fmt(value)} {ts:.3f}\n"
        yield "# EOF\n"

    def write_openmetrics(self, path: Path) -> Path:
        with path.open("w") as handle:
            handle.writelines(self.openmetrics_lines())
        return path


def default_scenario(end: float, *, hours: float = 6.0, step: float = 15.0, seed: int = 7) -> Scenario:
    """Two models, every incident type once, and the benign noise of the module docstring.

    ``end`` is aligned down to a whole minute; offsets scale with ``hours`` (designed for 6 h).
    """
    end = math.floor(end / 60) * 60
    start = end - hours * 3600
    scale = hours / 6.0

    def at(minute: float, length: float) -> tuple[float, float]:
        begin = start + minute * 60 * scale
        return begin, begin + length * 60

    a, b = (
        ModelSpec("fraud", base_rps=6.0),
        ModelSpec("chat", base_rps=4.0, slo_latency_seconds=0.5, score_mean=0.4),
    )
    events = [
        Event("night", a.name, start, start + 75 * 60 * scale),
        Event("night", b.name, start, start + 75 * 60 * scale),
        # model "fraud"
        Event("error_blip", a.name, *at(85, 1)),
        Event("error_burst", a.name, *at(95, 30)),
        Event("latency_blip", a.name, *at(135, 2)),
        Event("latency_spike", a.name, *at(155, 30)),
        Event("psi_drift", a.name, *at(200, 45), {"feature": "f2"}),
        Event("psi_blip", a.name, *at(255, 3), {"feature": "f1"}),
        Event("retrain", a.name, *at(270, 999), {"version": "v2", "score_mean": 0.45, "auc_baseline": 0.88}),
        Event("prediction_shift", a.name, *at(300, 40), {"score_mean": 0.85}),
        # model "chat"
        Event("auc_drop", b.name, *at(100, 60)),
        Event("toxicity_blip", b.name, *at(120, 1)),
        Event("toxicity_burst", b.name, *at(180, 30)),
        Event("null_blip", b.name, *at(215, 1), {"feature": "f1"}),
        Event("null_burst", b.name, *at(235, 25), {"feature": "f1"}),
        Event("target_flap", b.name, *at(275, 0.75)),
        Event("target_down", b.name, *at(295, 15)),
    ]
    return Scenario(start=start, end=end, models=[a, b], events=events, step=step, seed=seed)


def write_tsdb_blocks(openmetrics: Path, tsdb_dir: Path, *, timeout: float = 120.0) -> Path:
    """``promtool tsdb create-blocks-from openmetrics`` into ``tsdb_dir`` (a Prometheus data dir)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise FileNotFoundError("promtool is not on PATH; run scripts/setup.sh")
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(tsdb_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"promtool failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return tsdb_dir


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.scenarios --out DIR``: history.om, incidents.yml and DIR/tsdb blocks."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--end", type=float, default=None, help="Unix seconds (default: 10 minutes ago)")
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument(
        "--corpus",
        choices=("default", "hard"),
        default="default",
        help="hard: the 24 h corpus of tests/support/hard_corpus.py",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    end = args.end if args.end is not None else time.time() - 600
    if args.corpus == "hard":
        from tests.support.hard_corpus import hard_scenario

        scenario = hard_scenario(end)
    else:
        scenario = default_scenario(end, hours=args.hours)
    write_tsdb_blocks(scenario.write_openmetrics(args.out / "history.om"), args.out / "tsdb")
    scenario.write_incidents(args.out / "incidents.yml")
    print(f"--start {scenario.start:.0f} --end {scenario.end:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
