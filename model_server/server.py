"""The demo model server: a registry-following scikit-learn classifier with the metric contract.

Endpoints::

    POST /predict   {"request_id"?: str, "features": {name: number}}
                    -> {request_id, score, label, version, mode, input_problems}
    POST /feedback  {"request_id": str, "label": 0|1}                 -> {"joined": true} | 404
    POST /generate  {"prompt": str, "request_id"?: str, "tools"?: [str]}
                    -> {reply, version, blocked, guardrail_level, tools_blocked, tools_allowed, tools_refused}
    GET  /metrics   Prometheus exposition of the metric contract
    GET  /healthz   200 when a version is loaded and serving, else 503
    GET  /state     what the server currently serves (routing, mode, guardrail, tool switch, faults)
    GET|POST|DELETE /admin/faults   fault injection, bearer token (see model_server.faults)

Following the registry (a SQLite file, or an MLflow Model Registry with ``--registry-url
mlflow+http://host:5000``): a background thread polls ``registry.serving_token(model)`` every
``poll_interval`` seconds - one cheap read: the generation, plus on MLflow the ``champion`` alias - and, on a
change, reloads the state, loads any newly serving artifact (on MLflow through ``models:/NAME/VERSION``, see
:mod:`model_server.artifacts`) and swaps in an immutable routing table (so requests never see a
half-applied change). Each request picks a version at random by the traffic weights. A version without a
baseline (registered by a plain MLflow user) is served without PSI and baseline gauges, with one warning.

Fallback mode answers from the version's ``fallback_rule`` metadata (one feature against a threshold,
with the training positive rate on each side); without a rule it answers the baseline positive rate.
Missing or null features are imputed with the baseline mean of the feature (and counted as data-quality
problems); a non-numeric feature is a 400 naming it.

Guardrail levels for ``/generate``: 0 off; 1 withhold replies with toxicity >= 0.5; 2 >= 0.2; 3 withhold
every reply (safe canned answer only).

Tools for ``/generate``: ``tools`` names the tools the request wants to call (at most 32 names of 1-64
letters, digits, ``_`` or ``-``). While the registry's ``tools_blocked`` switch is set, the
:data:`RISKY_TOOLS` (matched case-insensitively, ``-`` as ``_``) are refused and the others allowed; with
the switch off every tool is allowed. Each distinct name is counted once per request in
``model_tool_calls_total{tool, outcome}`` under its canonical form (lower case, ``_``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from model_server.artifacts import load_version
from model_server.errors import RequestError
from model_server.faults import FaultBoard
from model_server.generation import (
    CANNED_REPLIES,
    GUARDRAIL_THRESHOLDS,
    RISKY_TOOLS,
    SAFE_REPLY,
    TOXIC_REPLIES,
    canonical_tool,
    parse_tools,
    tool_policy,
)
from model_server.generation import MAX_TOOLS as MAX_TOOLS
from model_server.instrumentation import DEFAULT_TOOL_NAMES, InstrumentationConfig, ServingMetrics
from model_server.routing import Routing, Served

__all__ = ["MAX_BODY_BYTES", "RISKY_TOOLS", "ModelServer", "RequestError", "Routing", "ServerConfig"]

log = logging.getLogger("model_server")

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class ServerConfig:
    registry_db: str  # a SQLite file or mlflow+http(s)://host:port
    model: str
    host: str = "127.0.0.1"
    port: int = 8081
    admin_token: str | None = None
    poll_interval: float = 0.5
    threads: int = 8
    #: Inputs in the PSI window and the fewest before PSI is exported: size the window to the traffic
    #: (a window holding a few minutes of requests reacts to drift in minutes, not hours).
    psi_window: int = 1000
    psi_min_samples: int = 100
    registry_token_file: str | None = None  # MLflow bearer token (else $MLFLOW_TRACKING_TOKEN)


class ModelServer:
    """Registry follower + request handling, independent of the HTTP layer."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        registry: Any = None,
        metrics_registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if registry is None:
            from model_registry import open_registry

            registry = open_registry(config.registry_db, token_file=config.registry_token_file)
        self.config = config
        self.registry = registry
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.metrics = ServingMetrics(
            self.metrics_registry,
            InstrumentationConfig(
                psi_window=config.psi_window,
                psi_min_samples=config.psi_min_samples,
                tool_names=DEFAULT_TOOL_NAMES | RISKY_TOOLS,
            ),
        )
        self.faults = FaultBoard()
        self.routing = Routing.build(-1, None, {}, "normal", 0, {})
        self.last_sync_error: str | None = None
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded: dict[str, Served] = {}
        self._token: str | None = None
        self._cache_dir: Path | None = None

    # -- following the registry ---------------------------------------------------------------------
    def sync(self) -> bool:
        """Apply the registry state if its generation changed; True if something was applied."""
        token = self.registry.serving_token(self.config.model)
        if token == self._token:
            return False
        state = self.registry.state(self.config.model)
        generation = state.generation
        wanted = {v for v, w in state.traffic.items() if w > 0}
        if state.active_version:
            wanted.add(state.active_version)
        served = {v: self._load(state, v) for v in sorted(wanted)}
        model = self.metrics.model(self.config.model)
        tools_blocked = bool(state.tools_blocked)
        model.set_serving(
            active=state.active_version,
            traffic=state.traffic,
            mode=state.mode,
            guardrail_level=state.guardrail_level,
            tools_blocked=tools_blocked,
        )
        self.routing = Routing.build(
            generation,
            state.active_version,
            state.traffic,
            state.mode,
            state.guardrail_level,
            served,
            tools_blocked=tools_blocked,
        )
        self._token = token
        log.info(
            "serving %s generation %d: active=%s traffic=%s mode=%s guardrail=%d tools_blocked=%s",
            self.config.model,
            generation,
            state.active_version,
            state.traffic,
            state.mode,
            state.guardrail_level,
            tools_blocked,
        )
        return True

    def _load(self, state: Any, version: str) -> Served:
        cached = self._loaded.get(version)
        if cached is not None:
            return cached
        info = state.version(version)
        if info is None:
            raise LookupError(f"version {version!r} of {self.config.model!r} is not registered")
        metadata = dict(info.metadata)
        baseline = info.baseline
        estimator = None
        names: list[str] = []
        if metadata.get("kind", "classifier") == "classifier":
            if self._cache_dir is None:
                import tempfile

                self._cache_dir = Path(tempfile.mkdtemp(prefix="model-server-"))
            loaded = load_version(self.registry, self.config.model, info, self._cache_dir)
            estimator, names = loaded.estimator, loaded.feature_names
        if baseline is None:
            log.warning(
                "%s version %s has no baseline (registered without model-registry): serving it "
                "without PSI and baseline gauges",
                self.config.model,
                version,
            )
        model = self.metrics.model(
            self.config.model,
            latency_buckets=metadata.get("latency_buckets") or (),
            slo_latency_seconds=metadata.get("slo_latency_seconds"),
            slo_error_ratio=metadata.get("slo_error_ratio"),
        )
        known = metadata.get("feature_names") or baseline
        instruments = model.version(
            version, baseline=baseline, metadata=metadata, feature_names=None if known else names
        )
        means = {fb.name: fb.mean for fb in baseline.features} if baseline is not None else {}
        impute = np.array([means.get(n, 0.0) for n in instruments.feature_names], dtype=float)
        served = Served(
            version,
            estimator,
            instruments,
            impute,
            metadata,
            float(baseline.positive_rate) if baseline is not None else 0.5,
        )
        self._loaded[version] = served
        return served

    def start(self) -> None:
        """First sync (errors propagate), then the background poller."""
        self.sync()
        self._thread = threading.Thread(target=self._poll, name="registry-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self.config.poll_interval):
            try:
                self.sync()
                self.last_sync_error = None
            except Exception as exc:  # keep serving the last good state; surface the error on /healthz
                self.last_sync_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "registry sync failed, still serving generation %d: %s",
                    self.routing.generation,
                    self.last_sync_error,
                )

    # -- requests ------------------------------------------------------------------------------------
    def _pick(self) -> tuple[Routing, Served]:
        routing = self.routing
        served = routing.choose(self._rng.random())
        if served is None:
            raise RequestError(503, f"no version of {self.config.model!r} is serving")
        return routing, served

    def predict(self, body: Any) -> dict[str, Any]:
        start = time.perf_counter()
        if not isinstance(body, dict) or not isinstance(body.get("features"), dict):
            raise RequestError(400, "body must be a JSON object with a 'features' object")
        request_id = body.get("request_id") or uuid.uuid4().hex
        if not isinstance(request_id, str) or len(request_id) > 200:
            raise RequestError(400, "request_id must be a string of at most 200 characters")
        routing, served = self._pick()
        vi = served.instruments
        faults = self.faults.for_version(served.version)
        features: dict[str, Any] = body["features"]
        if faults.null_rate and vi.feature_names and self._rng.random() < faults.null_rate:
            features = {**features, self._rng.choice(vi.feature_names): None}
        check = vi.check_input(features)
        if check.schema_errors:
            raise RequestError(
                400,
                "features must be numbers",
                [f"feature {name!r} is not a number" for name in check.schema_errors],
            )
        try:
            if faults.latency_seconds:
                time.sleep(faults.latency_seconds)
            if faults.error_rate and self._rng.random() < faults.error_rate:
                raise RuntimeError("injected fault: error")
            row = np.where(np.isnan(check.row), served.impute, check.row)
            if routing.mode == "fallback":
                score = _fallback_score(served, row)
            else:
                score = float(served.estimator.predict_proba(row.reshape(1, -1))[0, 1])
            if faults.corrupt_rate and self._rng.random() < faults.corrupt_rate:
                score = 1.0 - score
        except Exception as exc:
            vi.observe_error(time.perf_counter() - start)
            raise RequestError(500, f"prediction failed: {exc}") from exc
        vi.observe(check.row, score, time.perf_counter() - start, request_id=request_id)
        return {
            "request_id": request_id,
            "score": score,
            "label": int(score >= 0.5),
            "version": served.version,
            "mode": routing.mode,
            "input_problems": [f"{f}:{k}" for f, k in check.problems],
        }

    def feedback(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise RequestError(400, "body must be a JSON object")
        problems = []
        request_id, label = body.get("request_id"), body.get("label")
        if not isinstance(request_id, str) or not request_id:
            problems.append("request_id must be a non-empty string")
        if isinstance(label, bool) or label not in (0, 1):
            problems.append(f"label must be 0 or 1, got {label!r}")
        if problems or not isinstance(label, int):
            raise RequestError(400, "invalid feedback", problems)
        if not self.metrics.model(self.config.model).record_label(str(request_id), label):
            raise RequestError(404, f"unknown or expired request_id {request_id!r}")
        return {"joined": True}

    def generate(self, body: Any) -> dict[str, Any]:
        start = time.perf_counter()
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            raise RequestError(400, "body must be a JSON object with a 'prompt' string")
        tools = parse_tools(body.get("tools"))
        routing, served = self._pick()
        vi = served.instruments
        faults = self.faults.for_version(served.version)
        prompt: str = body["prompt"]
        if faults.latency_seconds:
            time.sleep(faults.latency_seconds)
        if faults.error_rate and self._rng.random() < faults.error_rate:
            vi.observe_error(time.perf_counter() - start)
            raise RequestError(500, "generation failed: injected fault: error")
        reply = CANNED_REPLIES[sum(map(ord, prompt)) % len(CANNED_REPLIES)]
        if faults.toxic_rate and self._rng.random() < faults.toxic_rate:
            reply = self._rng.choice(TOXIC_REPLIES)
        classifier = vi.model.toxicity
        toxicity = classifier.score(reply)
        level = routing.guardrail_level
        blocked = level >= 3 or (level in GUARDRAIL_THRESHOLDS and toxicity >= GUARDRAIL_THRESHOLDS[level])
        toxic = classifier.is_toxic(reply)
        allowed, refused = tool_policy(tools, routing.tools_blocked)
        vi.observe_output(toxic=toxic, blocked=blocked)
        if tools:
            vi.observe_tools(
                allowed=[canonical_tool(n) for n in allowed], refused=[canonical_tool(n) for n in refused]
            )
        vi.observe(None, None, time.perf_counter() - start)
        return {
            "reply": SAFE_REPLY if blocked else reply,
            "version": served.version,
            "blocked": blocked,
            "guardrail_level": level,
            "tools_blocked": routing.tools_blocked,
            "tools_allowed": allowed,
            "tools_refused": refused,
        }

    def describe(self) -> dict[str, Any]:
        routing = self.routing
        return {
            "model": self.config.model,
            "generation": routing.generation,
            "active_version": routing.active,
            "traffic": routing.traffic,
            "mode": routing.mode,
            "guardrail_level": routing.guardrail_level,
            "tools_blocked": routing.tools_blocked,
            "loaded_versions": sorted(routing.served),
            "faults": self.faults.snapshot(),
            "last_sync_error": self.last_sync_error,
        }


def _fallback_score(served: Served, row: np.ndarray) -> float:
    rule = served.metadata.get("fallback_rule")
    names = served.instruments.feature_names
    if isinstance(rule, Mapping) and rule.get("feature") in names:
        value = row[names.index(rule["feature"])]
        return float(rule["score_above"] if value > float(rule["threshold"]) else rule["score_below"])
    return served.positive_rate
