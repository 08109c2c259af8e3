"""Jinja filters of the console's templates: ages, stamps, label sets, a message's text. Output is text;
autoescape escapes it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["age", "compact", "hide_data_uris", "labelset", "message_text", "stamp"]

_DATA_URI = re.compile(r"\(data:image/svg\+xml;base64,[A-Za-z0-9+/=]+\)")


def age(value: str | None, now: float) -> str:
    if not value:
        return ""
    try:
        seconds = now - datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return value
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def stamp(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def labelset(labels: Any) -> str:
    if not isinstance(labels, Mapping):
        return ""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def compact(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_text(payload: Any) -> str:
    """The text people saw: Slack/Teams/webhook bodies carry it under a few known keys."""
    if isinstance(payload, Mapping):
        for key in ("text", "message", "summary"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
        if isinstance(payload.get("payload"), Mapping):
            return message_text(payload["payload"])
    return json.dumps(payload, indent=1, sort_keys=True, default=str)[:4000]


def hide_data_uris(markdown: str) -> str:
    return _DATA_URI.sub("(embedded chart, see the charts above)", markdown)
