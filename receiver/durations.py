"""Prometheus durations (``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1y``): the one grammar,
parser and formatter for rule files, runbooks, actions, the backtest and the drill-config generator, with
Prometheus's own grammar (integer counts, units in descending order, ``0`` allowed).

Callers only wrap these to raise their own error type; the grammar lives here and nowhere else.
"""

from __future__ import annotations

import math
import re

__all__ = ["DURATION_PATTERN", "PROMETHEUS_DURATION", "format_duration", "parse_prometheus_duration"]

#: Each unit and its length in seconds, largest first (the order Prometheus requires).
_UNITS: tuple[tuple[str, float], ...] = (
    ("y", 365 * 86400.0),
    ("w", 7 * 86400.0),
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
)

#: The grammar, spelled so that JSON Schema (ECMA-262) accepts it too: ``runbooks/runbook.schema.json``
#: holds this exact string (a test keeps them equal). The lookahead refuses the empty text; the bare ``0``
#: Prometheus also accepts is not matched (runbooks spell it ``0s``), :func:`parse_prometheus_duration`
#: accepts it separately.
DURATION_PATTERN = "^(?=[0-9])" + "".join(f"([0-9]+{unit})?" for unit, _ in _UNITS) + "$"
PROMETHEUS_DURATION = re.compile(DURATION_PATTERN)

#: Units :func:`format_duration` writes, in whole milliseconds: days at most, as rule files spell them.
_FORMAT_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def parse_prometheus_duration(text: str) -> float:
    """Seconds in ``text``; ``ValueError`` naming the text when Prometheus would not accept it."""
    source = text.strip() if isinstance(text, str) else None
    if source == "0":
        return 0.0
    match = PROMETHEUS_DURATION.match(source) if source else None
    if match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 5m, 1h30m")
    return sum(
        int(part[: -len(unit)]) * size
        for part, (unit, size) in zip(match.groups(), _UNITS, strict=True)
        if part
    )


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of ``seconds`` rounded to whole milliseconds, days being the largest
    unit (``90`` → ``1m30s``, ``0`` and anything under half a millisecond → ``0s``); ``ValueError`` for a
    negative or non-finite value, which has no spelling."""
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be finite, got {seconds}s")
    millis = round(seconds * 1000)
    if millis < 0:
        raise ValueError(f"duration must not be negative, got {seconds}s")
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
