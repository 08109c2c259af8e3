"""An incident's status updates: what goes where, queued on the outbox with a timeline entry each.

The responder decides *when* an incident speaks (opened, contained, escalated, every cadence, a ``notify``
step); this decides *what* and *where*: the runbook's channels, the status builder, the comms templates,
and one timeline entry per message queued or per channel that is not configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from receiver.comms.channels import ChannelSet
from receiver.comms.compose import queue_status_update
from receiver.comms.outbox import Outbox
from receiver.comms.templates import render_message
from receiver.runbooks import Runbook
from receiver.runbooks.sections import Duration
from receiver.status import StatusBuilder
from receiver.store.base import IncidentDetail, IncidentStore

__all__ = ["Speaker"]


class Speaker:
    def __init__(
        self,
        *,
        log: IncidentStore,
        status: StatusBuilder,
        channels: ChannelSet,
        outbox: Outbox,
        clock: Callable[[], float],
        scaled: Callable[[Duration], float] = lambda duration: duration.seconds,
    ) -> None:
        """``scaled``: a runbook duration in seconds (the responder's, which applies the time scale)."""
        self.log, self.status, self.channels, self.outbox = log, status, channels, outbox
        self.clock, self.scaled = clock, scaled

    def speak(
        self,
        detail: IncidentDetail,
        runbook: Runbook,
        event: str,
        *,
        sequence: int,
        summary: str = "",
        next_update_at: datetime | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """Queue the ``event`` update on every channel of the runbook (none: the runbook is silent)."""
        comms = runbook.comms
        if comms is None or not comms.channels:
            return
        if next_update_at is None and event != "resolved":
            next_at = self.clock() + self.scaled(comms.cadence)
            next_update_at = datetime.fromtimestamp(next_at, UTC)
        update = self.status.build(
            detail,
            runbook,
            event,
            sequence=sequence,
            summary=summary,
            next_update_at=next_update_at,
            fingerprint=fingerprint,
        )
        names = list(comms.channels)
        known = [n for n in names if n in self.channels]
        for missing in sorted(set(names) - set(known)):
            self.log.add_timeline(
                detail.incident.id,
                "message_error",
                f"channel {missing!r} is not configured; {event} update not sent there",
                {"channel": missing, "event": event},
                dedupe_key=f"nochannel:{missing}",
            )
        for item in queue_status_update(self.outbox, self.channels, update, known, comms.templates):
            if not item.queued:
                continue
            data = item.to_json()
            data["event"] = event
            self.log.add_timeline(
                detail.incident.id,
                "message",
                f"{event} update queued for {item.channel}: {item.message.title}",
                data,
                dedupe_key=f"message:{item.dedupe_key}",
            )

    def notify(
        self,
        detail: IncidentDetail,
        runbook: Runbook,
        channel: str,
        payload: Mapping[str, Any],
        dedupe_key: str,
    ) -> None:
        """A ``notify`` step: one message to one channel, through the runbook's comms templates."""
        update = self.status.build(
            detail,
            runbook,
            str(payload.get("event", "update")),
            sequence=0,
            summary=str(payload.get("text", "")),
        )
        target = self.channels[channel]
        message = render_message(
            update,
            str(payload.get("audience", target.audience)),
            runbook.comms.templates if runbook.comms else None,
        )
        incident_id = detail.incident.id
        if self.outbox.enqueue(str(incident_id), channel, target.build_payload(message), dedupe_key):
            self.log.add_timeline(
                incident_id,
                "message",
                f"notify queued for {channel}: {message.title}",
                {"channel": channel, "text": message.text, "event": payload.get("event")},
                dedupe_key=f"message:{dedupe_key}",
            )
