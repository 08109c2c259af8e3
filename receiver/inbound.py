"""Act on signed requests from Slack and PagerDuty after they were recorded (and answered).

The web handlers verify a request, record it in the store (:class:`~receiver.store.base.InboundRows`, unique
per source and key, so a replay or a second delivery is recognised there) and answer at once, well inside
Slack's 3 seconds; this worker then does the work from the durable row: acknowledge, approve / deny, recover
(Slack buttons), acknowledge / resolve (PagerDuty). A row is leased while it is handled, so a restart or a
second replica picks up what a dead one left; each handler is idempotent (acknowledge and resolve are
lifecycle moves that happen once, decisions win once), so handling a row again never acts twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from receiver.errors import NotFound, ReceiverError
from receiver.store.base import InboundEvent, Store

__all__ = ["InboundResponder", "InboundWorker"]

log = logging.getLogger("receiver.inbound")

_MAX_ATTEMPTS = 5


class InboundResponder(Protocol):
    def acknowledge(
        self, incident_id: int, actor: str, note: str = "", *, from_pager: bool = False
    ) -> bool: ...

    def resolve(self, incident_id: int, actor: str, note: str = "", *, from_pager: bool = False) -> bool: ...

    def recover(self, incident_id: int, actor: str, *, dry_run: bool = False) -> Any: ...

    def decide(
        self, incident_id: int, approval_id: int, decision: str, actor: str, reason: str = ""
    ) -> bool: ...


class InboundWorker:
    def __init__(
        self, store: Store, responder: InboundResponder, *, interval: float = 1.0, lease_seconds: float = 30.0
    ) -> None:
        self.store, self.responder = store, responder
        self.interval, self.lease_seconds = interval, lease_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="receiver-inbound", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def kick(self) -> None:
        """A request was recorded: handle it now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain()
            except Exception:
                log.exception("inbound worker step failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    # -- the work ---------------------------------------------------------------------------------------
    def drain(self) -> int:
        """Handle every pending request; returns how many were finished."""
        finished = 0
        while True:
            batch = self.store.inbound.claim(self.lease_seconds)
            if not batch:
                return finished
            for event in batch:
                finished += self._handle_one(event)

    def _handle_one(self, event: InboundEvent) -> int:
        try:
            note = self.handle(event)
        except ReceiverError as exc:  # e.g. an incident that does not exist: retrying will not help
            self.store.inbound.finish(event.id, "failed", exc.message)
            log.warning("inbound %s request %d refused: %s", event.source, event.id, exc.message)
            return 1
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if event.attempts >= _MAX_ATTEMPTS:
                self.store.inbound.finish(event.id, "failed", error)
                log.error("inbound %s request %d failed for good: %s", event.source, event.id, error)
                return 1
            self.store.inbound.retry(event.id, error, delay=min(60.0, 2.0**event.attempts))
            log.warning("inbound %s request %d failed, will retry: %s", event.source, event.id, error)
            return 0
        self.store.inbound.finish(event.id, "done", note)
        return 1

    def handle(self, event: InboundEvent) -> str | None:
        if event.source == "slack":
            return self._slack(event.payload)
        if event.source == "pagerduty":
            return self._pagerduty(event.payload)
        raise ReceiverError(f"unknown inbound source {event.source!r}")

    def _slack(self, payload: Mapping[str, Any]) -> str | None:
        action, incident_id = str(payload["action"]), int(payload["incident"])
        actor = f"slack:{payload.get('user_name') or payload.get('user_id')}"
        if action == "ack":
            self.responder.acknowledge(incident_id, actor, "acknowledged in Slack")
        elif action == "recover":
            self.responder.recover(incident_id, actor)
        elif action in ("approve", "deny"):
            won = self.responder.decide(
                incident_id,
                int(payload["approval"]),
                action,
                actor,
                str(payload.get("reason") or "via Slack"),
            )
            return None if won else "already decided"
        else:
            raise ReceiverError(f"unknown Slack action {action!r}")
        return None

    def _pagerduty(self, event: Mapping[str, Any]) -> str | None:
        kind = str(event.get("event_type", ""))
        data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
        assert isinstance(data, Mapping)
        key = data.get("incident_key")
        incident_id = self.store.inbound.incident_for_key(str(key)) if key else None
        if incident_id is None:
            raise NotFound(f"PagerDuty {kind}: no incident here with incident_key {key!r}")
        agent = event.get("agent") if isinstance(event.get("agent"), Mapping) else {}
        assert isinstance(agent, Mapping)
        actor = f"pagerduty:{agent.get('summary') or agent.get('id') or 'unknown'}"
        if kind == "incident.acknowledged":
            self.responder.acknowledge(incident_id, actor, "acknowledged in PagerDuty", from_pager=True)
        elif kind == "incident.resolved":
            self.responder.resolve(incident_id, actor, "resolved in PagerDuty", from_pager=True)
        return None
