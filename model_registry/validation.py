"""Input checks of the registry, each returning every problem found (empty list = valid).

Metadata conventions (other keys are free-form but must be JSON-serialisable):

``slo_latency_seconds``  float > 0, the latency objective; the model server exports it as a gauge
``slo_error_ratio``      float in (0, 1), the error-ratio objective
``latency_buckets``      strictly increasing floats > 0 for ``model_request_duration_seconds``; must
                         contain ``slo_latency_seconds`` as a bound when both are given (histogram_quantile
                         interpolates inside a bucket, so an SLO inside a wide bucket reads high)
``kind``                 ``"classifier"`` or ``"llm"``
``feature_names``        unique strings, the input schema; equal to the baseline's features when both given
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from model_registry.baseline import Baseline

__all__ = ["KINDS", "NAME_PATTERN", "metadata_problems", "name_problems", "weights_problems"]

#: Model and version names: no spaces, no '=' (the CLI splits ``v1=50``), at most 128 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")
KINDS = ("classifier", "llm")


def name_problems(what: str, value: object) -> list[str]:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        return [
            f"{what} {value!r} is not a valid name (letters, digits and . _ : + -, starting with a letter "
            "or digit, at most 128 characters)"
        ]
    return []


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metadata_problems(metadata: Mapping[str, Any], baseline: Baseline | None) -> list[str]:
    problems: list[str] = []
    if not isinstance(metadata, Mapping):
        return [f"metadata must be a JSON object, got {type(metadata).__name__}"]
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        problems.append(f"metadata must be JSON-serialisable: {exc}")
    slo = metadata.get("slo_latency_seconds")
    if slo is not None and not (_is_number(slo) and slo > 0):
        problems.append(f"metadata.slo_latency_seconds must be a number > 0, got {slo!r}")
    ratio = metadata.get("slo_error_ratio")
    if ratio is not None and not (_is_number(ratio) and 0 < ratio < 1):
        problems.append(f"metadata.slo_error_ratio must be a number in (0, 1), got {ratio!r}")
    buckets = metadata.get("latency_buckets")
    if buckets is not None:
        if not (isinstance(buckets, list) and buckets and all(_is_number(b) and b > 0 for b in buckets)):
            problems.append(
                f"metadata.latency_buckets must be a non-empty list of numbers > 0, got {buckets!r}"
            )
        elif any(b >= a for a, b in zip(buckets[1:], buckets, strict=False)):
            problems.append("metadata.latency_buckets must be strictly increasing")
        elif isinstance(slo, (int, float)) and not any(math.isclose(b, slo, rel_tol=1e-9) for b in buckets):
            problems.append(
                f"metadata.latency_buckets must include slo_latency_seconds ({slo}) as a bucket bound"
            )
    kind = metadata.get("kind")
    if kind is not None and kind not in KINDS:
        problems.append(f"metadata.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    names = metadata.get("feature_names")
    if names is not None:
        if not (isinstance(names, list) and all(isinstance(n, str) and n for n in names)):
            problems.append("metadata.feature_names must be a list of non-empty strings")
        elif len(set(names)) != len(names):
            problems.append("metadata.feature_names must be unique")
        elif baseline is not None and baseline.features and names != baseline.feature_names:
            problems.append(
                f"metadata.feature_names {names} differ from the baseline's features {baseline.feature_names}"
            )
    return problems


def weights_problems(weights: Mapping[str, Any]) -> list[str]:
    """Traffic weights: version -> percent, each a number >= 0, summing to 100."""
    if not isinstance(weights, Mapping) or not weights:
        return ["weights must be a non-empty mapping of version -> percent"]
    problems: list[str] = []
    for version, weight in weights.items():
        problems.extend(name_problems("version", version))
        if not (_is_number(weight) and 0 <= weight <= 100):
            problems.append(f"weight of {version!r} must be a number between 0 and 100, got {weight!r}")
    if not problems:
        total = math.fsum(float(w) for w in weights.values())
        if not math.isclose(total, 100.0, abs_tol=1e-6):
            problems.append(f"weights must sum to 100, got {total:g}")
    return problems
