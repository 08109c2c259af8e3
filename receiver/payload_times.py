"""Alertmanager's times: RFC 3339 in, aware UTC datetimes out, and the store's one canonical spelling.

One module for every reading of a payload time, so the quick check's fast test of the common ``...Z``
shape sits next to the full grammar it must stay a subset of.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["format_time", "is_zero_time", "parse_rfc3339", "utc_time_state"]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
#: the common shape of Alertmanager's times (UTC, ``T``, ``Z``): a strict subset of ``_RFC3339``
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z", re.ASCII)


def parse_rfc3339(text: str) -> datetime | None:
    """Parse an RFC 3339 time (nanoseconds truncated to microseconds) into an aware UTC datetime.

    Go's zero time ``0001-01-01T00:00:00Z`` means "unset" and returns ``None``. Raises ``ValueError``.
    """
    match = _RFC3339.match(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        tz = UTC
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(text)
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if int(year) <= 1 and month == "01" and day == "01":
        return None  # Go zero time (in any offset): unset
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    return moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str | None:
    """The canonical text of a time in the store: UTC, microseconds, ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_zero_time(value: Any) -> bool:
    """``value`` is Go's zero time in RFC 3339 (``0001-01-01T...``): Alertmanager's "unset"."""
    return isinstance(value, str) and bool(_RFC3339.match(value)) and value[:10] == "0001-01-01"


def utc_time_state(value: Any) -> int:
    """1: a valid UTC ``...Z`` time that is set; 0: Go's zero time (unset); -1: anything else (the slow
    path decides). A subset of what :func:`parse_rfc3339` accepts, with the same range checks."""
    if type(value) is not str or _UTC_TIME.fullmatch(value) is None:
        return -1
    if value[4:10] == "-01-01" and value[:4] in ("0000", "0001"):
        return 0
    if value[11:13] > "23" or value[17:19] > "59":  # explicit: never rely on a lenient fromisoformat
        return -1
    try:
        datetime.fromisoformat(value[:19])  # the calendar check (month length, leap years)
    except ValueError:
        return -1
    return 1
