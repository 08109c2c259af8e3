"""Prometheus-style durations (``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1y``)."""

from __future__ import annotations

import re

from receiver.actions.kinds import DURATION_PATTERN

__all__ = ["DURATION_PATTERN", "parse_duration"]

_UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the bad text."""
    if not isinstance(text, str) or not re.match(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h30m")
    return sum(int(num) * _UNITS[unit] for num, unit in _PART.findall(text))
