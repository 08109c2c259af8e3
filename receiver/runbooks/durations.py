"""Runbook durations (``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1y``): the shared Prometheus
grammar, held to the exact spelling the runbook JSON schema accepts so that loading and linting agree."""

from __future__ import annotations

from receiver.durations import DURATION_PATTERN, PROMETHEUS_DURATION, parse_prometheus_duration

__all__ = ["DURATION_PATTERN", "parse_duration"]


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the bad text. Like the schema, refuses the bare ``0``
    and surrounding blanks that :func:`parse_prometheus_duration` tolerates."""
    if not isinstance(text, str) or not PROMETHEUS_DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h30m")
    return parse_prometheus_duration(text)
