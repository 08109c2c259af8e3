"""Prometheus-style durations (``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1y``)."""

from __future__ import annotations

import re

from receiver.actions.kinds import DURATION_PATTERN
from receiver.durations import parse_prometheus_duration

__all__ = ["DURATION_PATTERN", "parse_duration"]


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the bad text."""
    if not isinstance(text, str) or not re.match(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h30m")
    return parse_prometheus_duration(text)
