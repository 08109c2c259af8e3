"""The HTTP front: waitress with limits that a hostile or broken sender cannot exhaust.

Why this module exists: stock waitress buffers a whole request (spooling large bodies to a temporary
file) before the app sees it, keeps at most 100 connections, and its ``channel_timeout`` counts only
idle time, so ~100 clients trickling one byte every few seconds locked every webhook out, and a 300 MiB
POST without credentials was written to disk before the app could answer 401. Here:

- a **total request deadline**: a request whose headers and body are not complete within
  ``request_deadline`` seconds of its first byte is dropped, however steadily it trickles;
- a **connection limit** well above what Alertmanager needs (it is the backstop, not the defence),
  with ``poll()`` so descriptors above 1024 work;
- a **header gate** on the webhook route: credentials and ``Content-Length`` are checked as soon as the
  headers are in, before one byte of the body is read (401 / 413, then the connection closes);
- the **body limit enforced by the server** for every route (``max_request_body_size``);
- each request's **first-byte time** in its WSGI environ (:data:`FIRST_BYTE_AT`), so the webhook's answer
  time counts the wait for a free thread, as Alertmanager sees it.

A reverse proxy in front should still add per-client connection and rate limits (see the README).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask
from waitress.utilities import Error, RequestEntityTooLarge

from receiver.config import Settings
from receiver.errors import error_body

__all__ = ["FIRST_BYTE_AT", "FrontLimits", "Gate", "Refusal", "create_front", "webhook_gate"]

log = logging.getLogger("receiver.front")

WEBHOOK_PATH = "/api/v1/alerts"
#: WSGI environ key: ``time.time()`` when the request's first byte arrived
FIRST_BYTE_AT = "receiver.first_byte_at"


class Refusal(Error):
    """A response decided from the headers alone; waitress sends it and closes the connection."""

    def __init__(self, code: int, reason: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.extra_headers = dict(headers or {})

    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        body = error_body(self.code, self.reason.replace(" ", ""), self.body)
        headers = [("Content-Type", "application/json"), *self.extra_headers.items()]
        return f"{self.code} {self.reason}", headers, json.dumps(body).encode() + b"\n"


# (method, path, headers as waitress keeps them: upper case, '_' for '-', content length) -> refusal
Gate = Callable[[str, str, Mapping[str, str], int], Refusal | None]


@dataclass(frozen=True)
class FrontLimits:
    connection_limit: int = 1000
    request_deadline: float = 10.0  # seconds from a request's first byte to its last
    idle_timeout: int = 30  # seconds an idle keep-alive connection is kept
    max_body_bytes: int = 1024 * 1024


def webhook_gate(settings: Settings) -> Gate:
    """Refuse webhook requests without valid credentials, or declaring a body over the limit."""
    from receiver.api.auth import basic_header_ok, bearer_header_ok
    from receiver.api.webhook import CHALLENGE

    def gate(method: str, path: str, headers: Mapping[str, str], content_length: int) -> Refusal | None:
        if method != "POST" or path.rstrip("/") != WEBHOOK_PATH:
            return None
        header = headers.get("AUTHORIZATION", "")
        if not (
            bearer_header_ok(header, settings.webhook_token)
            or basic_header_ok(header, settings.webhook_basic_user, settings.webhook_basic_password)
        ):
            log.warning("webhook request refused before its body: missing or wrong credentials")
            return Refusal(
                401, "Unauthorized", "missing or wrong credentials", {"WWW-Authenticate": CHALLENGE}
            )
        if content_length > settings.max_body_bytes:
            log.warning("webhook request refused before its body: Content-Length %d", content_length)
            return Refusal(
                413,
                "Payload Too Large",
                f"body of {content_length} bytes exceeds the limit of {settings.max_body_bytes} bytes",
            )
        return None

    return gate


class _GatedParser(HTTPRequestParser):
    gate: Gate | None = None

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.first_byte_at = time.time()
        self._gated = False

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        if self.headers_finished and not self._gated:
            self._gated = True
            # credentials come first: waitress's own 413 (Content-Length alone) yields to a 401
            error: Any = getattr(self, "error", None)
            undecided = error is None or isinstance(error, RequestEntityTooLarge)
            if undecided and not self.empty and self.gate is not None:
                refusal = self.gate(self.command, self.path, self.headers, self.content_length)
                if refusal is not None:
                    self.error = refusal
                    self.completed = True
            if getattr(self, "error", None) is not None:
                # no "100 Continue" for a refused request: waitress would then un-complete it and read on
                self.expect_continue = False
        return consumed


class _StampedTask(WSGITask):
    def get_environment(self) -> Any:
        environ = super().get_environment()
        environ.setdefault(FIRST_BYTE_AT, getattr(self.request, "first_byte_at", None))
        return environ


class _FrontServer(TcpWSGIServer):
    request_deadline: float = 10.0
    #: most connections accepted per readiness of the listening socket. Waitress accepts one per pass of
    #: its loop, and each pass polls every open connection: when Alertmanager flushes hundreds of groups
    #: at once, each on a new connection, the last ones waited O(n^2) before their first byte was read.
    accept_batch: int = 64

    def handle_accept(self) -> None:
        for _ in range(self.accept_batch):
            if len(self._map) >= self.adj.connection_limit:
                return  # readable() stops listening at the limit; leave the rest in the backlog
            before = len(self._map)
            super().handle_accept()  # waitress's: one connection, or none waiting, or a bogus one logged
            if len(self._map) == before:
                return

    def maintenance(self, now: float) -> None:
        """Idle connections go after ``channel_timeout``; unfinished requests after the deadline."""
        super().maintenance(now)
        cutoff = now - self.request_deadline
        dropped = 0
        for channel in self.active_channels.values():
            partial = channel.request
            if partial is not None and not channel.requests and partial.first_byte_at < cutoff:
                channel.will_close = True
                dropped += 1
        if dropped:
            log.warning(
                "dropped %d connection(s) whose request was not complete after %.0f s",
                dropped,
                self.request_deadline,
            )


def create_front(
    app: Any,
    *,
    host: str,
    port: int,
    threads: int,
    limits: FrontLimits,
    gate: Gate | None = None,
    **adjustments: Any,
) -> Any:
    """A waitress server for ``app`` (one listening socket per address ``host`` resolves to)."""
    parser = type("GatedParser", (_GatedParser,), {"gate": staticmethod(gate) if gate else None})
    channel = type("GatedChannel", (HTTPChannel,), {"parser_class": parser, "task_class": _StampedTask})
    server_class = type(
        "FrontServer",
        (_FrontServer,),
        {"channel_class": channel, "request_deadline": limits.request_deadline},
    )
    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident="receiver",
        connection_limit=limits.connection_limit,
        channel_timeout=limits.idle_timeout,
        cleanup_interval=1,
        asyncore_use_poll=True,
        # waitress refuses when Content-Length >= this, so +1 allows a body of exactly the limit
        max_request_body_size=limits.max_body_bytes + 1,
        **adjustments,
    )
    socket_map: dict[int, Any] = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    servers = [
        server_class(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)
        for sockinfo in adj.listen
    ]
    if len(servers) == 1:
        return servers[0]
    listen = [(s.effective_host, s.effective_port) for s in servers]
    return MultiSocketServer(socket_map, adj, listen, dispatcher, log_info=servers[-1].log_info)
