"""A loopback timing proxy for ``bench/alert_storm.py``: forwards each POST to a receiver replica and records
how long the replica took to answer it, on one asyncio loop in a process of its own.

    .venv/bin/python bench/timing_proxy.py --upstream http://127.0.0.1:PORT [--upstream ...] --port-file FILE

With several ``--upstream`` options it is also a load balancer: each new connection goes to the next
upstream in turn (what a Kubernetes Service or a TCP balancer in front of the replicas does).

Why a process and a loop: when the storm's groups flush, Alertmanager opens hundreds of connections at
once. The first proxy ran a thread per connection with ``requests`` inside the bench process, and each
timed span then also waited for that process's GIL: its p99 came out 100-450 ms above the replicas' own
``receiver_webhook_answer_seconds`` in the same runs. Here the span is from writing the request upstream to
reading the whole answer, and the loop does nothing else.

``GET /__stats`` answers ``{"answers": [[seconds, status, upstream], ...], "client_gone": n}`` (``upstream``:
the index of the one that answered): ``status`` 502 when
the replica could not be reached or closed the connection; ``client_gone`` counts answers Alertmanager did
not wait for (it gave up on that attempt and retries).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

_FORWARDED = (b"authorization", b"content-type")
_UPSTREAM_TIMEOUT = 30.0


class Proxy:
    def __init__(self, upstreams: list[tuple[str, int]]) -> None:
        self.upstreams = upstreams
        self.answers: list[tuple[float, int, int]] = []
        self.client_gone = 0
        self._connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self._connections % len(self.upstreams)
        self._connections += 1
        host, port = self.upstreams[index]
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, headers = _parse_head(head)
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                method, path = request_line.split(b" ")[:2]
                if method == b"GET" and path == b"/__stats":
                    stats = {"answers": self.answers, "client_gone": self.client_gone}
                    writer.write(_response(200, json.dumps(stats).encode()))
                    await writer.drain()
                    continue
                start = time.perf_counter()
                try:
                    if upstream is None:
                        upstream = await asyncio.open_connection(host, port)
                    status, answer, keep = await asyncio.wait_for(
                        _forward(upstream, request_line, headers, body, host, port),
                        _UPSTREAM_TIMEOUT,
                    )
                    if not keep:
                        upstream[1].close()
                        upstream = None
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                    status, answer = 502, b"{}"
                    if upstream is not None:
                        upstream[1].close()
                        upstream = None
                self.answers.append((time.perf_counter() - start, status, index))
                try:
                    writer.write(_response(status, answer))
                    await writer.drain()
                except ConnectionError:
                    self.client_gone += 1
                    return
        except asyncio.CancelledError:
            return  # the proxy is stopping
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()


def _parse_head(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    first, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return first, headers


async def _forward(
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    request_line: bytes,
    headers: dict[bytes, bytes],
    body: bytes,
    host: str,
    port: int,
) -> tuple[int, bytes, bool]:
    reader, writer = upstream
    out = [request_line, b"Host: %s:%d" % (host.encode(), port), b"Content-Length: %d" % len(body)]
    out += [b"%s: %s" % (name, headers[name]) for name in _FORWARDED if name in headers]
    writer.write(b"\r\n".join(out) + b"\r\n\r\n" + body)
    await writer.drain()
    status_line, answer_headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
    answer = await reader.readexactly(int(answer_headers.get(b"content-length", b"0")))
    keep = answer_headers.get(b"connection", b"").lower() != b"close"
    return int(status_line.split(b" ")[1]), answer, keep


def _response(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _serve(upstreams: list[str], port_file: Path) -> None:
    targets = [urlsplit(url) for url in upstreams]
    proxy = Proxy([(t.hostname or "127.0.0.1", t.port or 80) for t in targets])
    # Alertmanager opens hundreds of connections at once: a short listen backlog would leave some in SYN
    # retries past its notify timeout, charged to the receiver as abandoned answers
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    port_file.write_text(str(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", action="append", required=True, help="repeat to balance over several")
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.upstream, args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
