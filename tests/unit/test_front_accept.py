"""The HTTP front accepts a burst of new connections in one pass of its loop, up to its connection limit.

Waitress takes one connection per pass and polls every open one in each pass; when Alertmanager flushes
hundreds of groups at once, each on a new connection, that made the last ones wait quadratically.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from receiver.front import FrontLimits, create_front


def _app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for conn in opened:
        conn.close()


def _front(connection_limit: int) -> Any:
    return create_front(
        _app, host="127.0.0.1", port=0, threads=1, limits=FrontLimits(connection_limit=connection_limit)
    )


def _connect(server: Any, n: int, clients: list[socket.socket]) -> None:
    for _ in range(n):
        clients.append(socket.create_connection(("127.0.0.1", server.effective_port), timeout=5))
    time.sleep(0.2)  # the handshakes complete in the kernel; the connections wait in the listen backlog


def _channels(server: Any) -> int:
    return sum(1 for channel in server._map.values() if type(channel).__name__ == "GatedChannel")


def test_a_burst_of_connections_is_accepted_in_one_pass(clients: list[socket.socket]) -> None:
    server = _front(connection_limit=1000)
    try:
        _connect(server, 40, clients)
        server.handle_accept()
        assert _channels(server) == 40
        server.handle_accept()  # nothing more waiting: returns at once
        assert _channels(server) == 40
    finally:
        server.close()
        server.task_dispatcher.shutdown()


def test_accepting_stops_at_the_connection_limit(clients: list[socket.socket]) -> None:
    server = _front(connection_limit=12)
    try:
        _connect(server, 30, clients)
        server.handle_accept()
        assert len(server._map) == 12  # the map holds the listener and its trigger too
        assert not server.readable()  # readable() then stops listening until connections close
    finally:
        server.close()
        server.task_dispatcher.shutdown()
