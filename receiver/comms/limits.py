"""What each platform accepts, and how long text is cut to fit: visibly, with a link to the full text.

Why: a 1 MB annotation made a 352-block Slack message; Slack refused it (4xx), the message was
dead-lettered and the on-call engineer never saw the update. Every payload a channel builds stays inside
its platform's documented limits; a value that does not fit ends with a note saying how much was cut and
where the full text is (the incident's page, whose timeline keeps every word).

Documented limits used here:
- Slack (Block Kit, incoming webhooks): at most 50 blocks per message; a section's text at most 3,000
  characters; a header's at most 150; a button's text at most 75 and its URL at most 3,000; the top-level
  ``text`` is truncated by Slack beyond 40,000 characters.
- Microsoft Teams (incoming webhook / Adaptive Card): the whole message at most 28 KB.
- PagerDuty Events API v2: ``summary`` at most 1,024 characters, the whole event at most 512 KB.
- The generic webhook is ours: at most 256 KiB, so any receiving tool can hold it in memory.
Sizes are of the JSON as it goes on the wire (``json.dumps`` with ASCII escapes, as ``requests`` sends it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "PAGERDUTY_EVENT_BYTES",
    "PAGERDUTY_SUMMARY_CHARS",
    "SLACK_BLOCKS",
    "SLACK_BUTTON_TEXT_CHARS",
    "SLACK_BUTTON_URL_CHARS",
    "SLACK_HEADER_CHARS",
    "SLACK_SECTION_CHARS",
    "SLACK_TEXT_CHARS",
    "TEAMS_MESSAGE_BYTES",
    "WEBHOOK_PAYLOAD_BYTES",
    "cut",
    "cut_values",
    "fit",
    "wire_size",
]

SLACK_BLOCKS = 50
SLACK_SECTION_CHARS = 3000
SLACK_HEADER_CHARS = 150
SLACK_BUTTON_TEXT_CHARS = 75
SLACK_BUTTON_URL_CHARS = 3000
SLACK_TEXT_CHARS = 40000
TEAMS_MESSAGE_BYTES = 28 * 1024
PAGERDUTY_SUMMARY_CHARS = 1024
PAGERDUTY_EVENT_BYTES = 512 * 1024
WEBHOOK_PAYLOAD_BYTES = 256 * 1024


def wire_size(payload: Any) -> int:
    """Bytes of ``payload`` as JSON on the wire."""
    return len(json.dumps(payload).encode("utf-8"))


def cut(text: str, limit: int, full_text_at: str | None) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and a visible note (within limit)."""
    if len(text) <= limit:
        return text
    where = full_text_at or "the incident's timeline"
    note = f"\n… [cut: {len(text):,} characters in all; full text: {where}]"
    if len(note) >= limit:
        return note.strip()[:limit]
    return text[: limit - len(note)] + note


def fit(build: Callable[[int], Any], max_bytes: int, start: int) -> Any:
    """``build(budget)`` with the largest budget (``start``, halved as needed) whose payload fits."""
    budget = start
    payload = build(budget)
    while wire_size(payload) > max_bytes and budget > 16:
        budget //= 2
        payload = build(budget)
    return payload


def cut_values(value: Any, limit: int, full_text_at: str | None) -> Any:
    """``value`` (JSON-like) with every string longer than ``limit`` cut by :func:`cut`."""
    if isinstance(value, str):
        return cut(value, limit, full_text_at)
    if isinstance(value, Mapping):
        return {k: cut_values(v, limit, full_text_at) for k, v in value.items()}
    if isinstance(value, list):
        return [cut_values(v, limit, full_text_at) for v in value]
    return value
