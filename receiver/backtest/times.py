"""Parse the times a backtest is given: RFC 3339, Unix seconds, or ``now``/``now-6h``."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from receiver.backtest.rules import parse_duration
from receiver.errors import BacktestError

__all__ = ["format_time", "parse_time"]

_RELATIVE_RE = re.compile(r"^now\s*(?:([+-])\s*(\S+))?$")


def parse_time(value: object, what: str = "time", *, now: float | None = None) -> float:
    """Unix seconds from ``value``; raises :class:`BacktestError` naming ``what`` if it is not a time.

    Accepts numbers (Unix seconds), RFC 3339 / ISO 8601 strings (a missing offset means UTC), datetimes
    (from YAML), and ``now``, ``now-6h``, ``now+30m``.
    """
    if isinstance(value, bool) or value is None:
        raise BacktestError(f"{what}: {value!r} is not a time")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    text = str(value).strip()
    relative = _RELATIVE_RE.match(text)
    if relative:
        base = time.time() if now is None else now
        if relative.group(1) is None:
            return base
        try:
            offset = parse_duration(relative.group(2))
        except ValueError as exc:
            raise BacktestError(f"{what}: {text!r}: {exc}") from exc
        return base + offset if relative.group(1) == "+" else base - offset
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BacktestError(
            f"{what}: {text!r} is not a time (use RFC 3339 like 2024-05-01T12:00:00Z, Unix seconds, "
            f"or now-6h)"
        ) from exc
    return parse_time(parsed, what)


def format_time(timestamp: float | None) -> str:
    """RFC 3339 in UTC with seconds precision, or ``-`` for ``None``."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
