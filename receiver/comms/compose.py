"""From one :class:`StatusUpdate` to queued messages: render per audience, shape per channel, enqueue.

This is the single call the orchestrator makes to communicate::

    queue_status_update(outbox, channels, update, runbook["comms"]["channels"],
                        runbook["comms"].get("templates"))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from receiver.comms.channels import Channel
from receiver.comms.message import RenderedMessage, StatusUpdate
from receiver.comms.outbox import Outbox
from receiver.comms.templates import render_message

__all__ = ["QueuedMessage", "queue_status_update"]


@dataclass(frozen=True)
class QueuedMessage:
    """What was queued for one channel; ``queued`` is False when the same message was queued before."""

    channel: str
    dedupe_key: str
    message: RenderedMessage
    queued: bool

    def to_json(self) -> dict[str, Any]:
        """A timeline entry: what was said where, and whether the template fell back."""
        return {
            "channel": self.channel,
            "dedupe_key": self.dedupe_key,
            "audience": self.message.audience,
            "title": self.message.title,
            "text": self.message.text,
            "fallback": self.message.fallback,
            "template_error": self.message.error,
            "queued": self.queued,
        }


def queue_status_update(
    outbox: Outbox,
    channels: Mapping[str, Channel],
    update: StatusUpdate,
    channel_names: Iterable[str],
    overrides: Mapping[str, Any] | None = None,
    *,
    now: float | None = None,
) -> list[QueuedMessage]:
    """Render ``update`` once per audience and queue it on each named channel (idempotently)."""
    rendered: dict[str, RenderedMessage] = {}
    results: list[QueuedMessage] = []
    for name in channel_names:
        channel = channels[name]
        message = rendered.get(channel.audience)
        if message is None:
            message = rendered[channel.audience] = render_message(update, channel.audience, overrides)
        key = update.dedupe_key(name, channel.audience)
        queued = outbox.enqueue(update.incident_id, name, channel.build_payload(message), key, now=now)
        results.append(QueuedMessage(name, key, message, queued))
    return results
