"""A small client for the Prometheus HTTP API (``/api/v1/query`` and ``/api/v1/query_range``).

Every failure becomes one of two exceptions with a short human reason:

* :class:`~receiver.errors.PrometheusUnavailable` — connection refused, timeout, HTTP 5xx/429: try later;
* :class:`~receiver.errors.PrometheusQueryError` — HTTP 4xx (Prometheus's own ``error`` text is quoted),
  a body that is not JSON, ``status != "success"``, or a result type this client does not handle.

The transport is an injected :class:`requests.Session`, which is the seam for tests (no patching).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from receiver.errors import PrometheusQueryError, PrometheusUnavailable

__all__ = ["PrometheusClient", "RangeSeries", "Sample"]

_REASON_LIMIT = 300


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or a scalar, with empty ``labels``)."""

    labels: Mapping[str, str]
    value: float
    timestamp: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"labels": dict(self.labels), "value": _json_float(self.value), "timestamp": self.timestamp}


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: ``values`` are ``(timestamp, value)`` pairs."""

    labels: Mapping[str, str]
    values: list[tuple[float, float]] = field(default_factory=list)


def _json_float(value: float) -> float | str:
    """JSON has no NaN/Inf; keep Prometheus's spelling for them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"


def _without_userinfo(url: str) -> str:
    """``http://user:secret@host:9090`` → ``http://host:9090``: credentials never reach a message."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _timestamp(value: float | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return f"{value.timestamp():.3f}"
    return f"{float(value):.3f}"


def _parse_value(pair: Any, where: str) -> tuple[float, float]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise PrometheusQueryError(f"malformed sample in {where}: {_short(repr(pair))}")
    try:
        return float(pair[0]), float(pair[1])
    except (TypeError, ValueError) as exc:
        raise PrometheusQueryError(f"malformed sample value in {where}: {_short(repr(pair))}") from exc


def _labels(item: Mapping[str, Any]) -> dict[str, str]:
    metric = item.get("metric", {})
    if not isinstance(metric, dict):
        raise PrometheusQueryError("malformed series labels in response")
    return {str(k): str(v) for k, v in metric.items()}


class PrometheusClient:
    """``PrometheusClient("http://127.0.0.1:9090").query('up == 1')`` → ``[Sample(...), ...]``."""

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, session: requests.Session | None = None
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("Prometheus base_url must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self._shown_url = _without_userinfo(self.base_url)
        self.timeout = timeout
        self._session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"PrometheusClient({self._shown_url!r}, timeout={self.timeout})"

    def query(self, expr: str, time: float | datetime | None = None) -> list[Sample]:
        """Run an instant query. A scalar result comes back as one sample with no labels;
        a string or matrix result raises :class:`PrometheusQueryError`."""
        params: dict[str, str] = {"query": expr}
        stamp = _timestamp(time)
        if stamp is not None:
            params["time"] = stamp
        data = self._get("/api/v1/query", params)
        result_type = data.get("resultType")
        result = data.get("result")
        if result_type == "vector" and isinstance(result, list):
            samples = []
            for item in result:
                if not isinstance(item, dict):
                    raise PrometheusQueryError("malformed vector element in response")
                ts, value = _parse_value(item.get("value"), "vector")
                samples.append(Sample(_labels(item), value, ts))
            return samples
        if result_type == "scalar":
            ts, value = _parse_value(result, "scalar")
            return [Sample({}, value, ts)]
        raise PrometheusQueryError(
            f"query {expr!r} returned a {result_type!r} result; expected an instant vector or scalar"
        )

    def query_range(
        self, expr: str, start: float | datetime, end: float | datetime, step: float
    ) -> list[RangeSeries]:
        """Run a range query; ``step`` is in seconds."""
        if step <= 0:
            raise ValueError("step must be positive")
        params = {
            "query": expr,
            "start": _timestamp(start) or "",
            "end": _timestamp(end) or "",
            "step": f"{step:g}",
        }
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PrometheusQueryError(
                f"range query {expr!r} returned a {data.get('resultType')!r} result; expected a matrix"
            )
        series = []
        for item in data["result"]:
            if not isinstance(item, dict) or not isinstance(item.get("values"), list):
                raise PrometheusQueryError("malformed matrix element in response")
            series.append(RangeSeries(_labels(item), [_parse_value(p, "matrix") for p in item["values"]]))
        return series

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = self._session.get(url, params=params, timeout=self.timeout)
        except requests.Timeout as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self._shown_url} timed out after {self.timeout:g}s"
            ) from exc
        except requests.ConnectionError as exc:
            raise PrometheusUnavailable(f"cannot connect to Prometheus at {self._shown_url}") from exc
        except requests.RequestException as exc:
            raise PrometheusUnavailable(f"request to Prometheus failed: {type(exc).__name__}") from exc

        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        prom_error = ""
        if isinstance(body, dict) and body.get("error"):
            prom_error = f"{body.get('errorType', 'error')}: {body['error']}"
        status = response.status_code
        if status >= 500 or status == 429:
            detail = prom_error or _short(response.text) or response.reason
            raise PrometheusUnavailable(f"Prometheus answered HTTP {status}: {_short(detail)}")
        if status >= 400:
            detail = prom_error or _short(response.text) or response.reason
            raise PrometheusQueryError(f"Prometheus rejected the query (HTTP {status}): {_short(detail)}")
        if not isinstance(body, dict):
            raise PrometheusQueryError(
                f"Prometheus answered HTTP {status} with a body that is not a JSON object"
            )
        if body.get("status") != "success":
            raise PrometheusQueryError(f"Prometheus query failed: {_short(prom_error or repr(body))}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusQueryError("Prometheus response has no 'data' object")
        return data
