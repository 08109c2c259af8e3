"""Prometheus durations (``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1y``): one parser for rule
files, runbooks and the drill-config generator, with Prometheus's own grammar (integer counts, units in
descending order, ``0`` allowed)."""

from __future__ import annotations

import re

__all__ = ["PROMETHEUS_DURATION", "parse_prometheus_duration"]

PROMETHEUS_DURATION = re.compile(
    r"^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$"
)
_UNIT_SECONDS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)


def parse_prometheus_duration(text: str) -> float:
    """Seconds in ``text``; ``ValueError`` naming the text when Prometheus would not accept it."""
    source = text.strip() if isinstance(text, str) else None
    if source == "0":
        return 0.0
    match = PROMETHEUS_DURATION.match(source) if source else None
    if match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 5m, 1h30m")
    return sum(int(count) * unit for count, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if count)
