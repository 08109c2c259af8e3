"""A local chat/pager sink for drills: a real HTTP server that records every POST it receives.

``GET /messages`` lists what it recorded (channel and text); ``python -m receiver.drill.chatsink --port N``
runs it standalone (the docker compose stack does, as the chat and pager endpoint).

Channels and the pager are pointed at ``<sink.url>/<kind>/<name>`` (for example ``/chat/ml-incidents`` or
``/pager``; Alertmanager's pages about the engine itself at ``/engine-pager``), so the report can say which
channel a message went to. Nothing is forwarded anywhere.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ChatSink", "SinkMessage", "main"]

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class SinkMessage:
    """One request the sink received: when, on which path, and its body (JSON when it parsed)."""

    at: float
    path: str
    body: Any

    @property
    def channel(self) -> str:
        """The last path segment: the channel name for ``/chat/<name>``, ``pager`` for ``/pager``."""
        return self.path.rstrip("/").rsplit("/", 1)[-1] or "/"

    def text(self) -> str:
        """The human-readable text of a Slack, Teams, generic-webhook or PagerDuty-shaped body."""
        body = self.body
        if isinstance(body, dict):
            if isinstance(body.get("text"), str):
                return str(body["text"])
            payload = body.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("summary"), str):
                return f"[{body.get('event_action', 'page')}] {payload['summary']}"
            if body.get("event_action"):
                return f"[{body['event_action']}] dedup_key={body.get('dedup_key')}"
            for key in ("message", "title", "summary"):
                if isinstance(body.get(key), str):
                    return str(body[key])
            attachments = body.get("attachments")
            if isinstance(attachments, list) and attachments:
                return json.dumps(attachments[0])[:500]
        return json.dumps(body)[:500] if not isinstance(body, str) else body[:500]


class ChatSink:
    """Start with ``ChatSink()``; ``url``, ``messages()``, ``stop()``. Thread-safe."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._messages: list[SinkMessage] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_response(413)
                    self.end_headers()
                    return
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
                with sink._lock:
                    sink._messages.append(SinkMessage(time.time(), self.path, body))
                answer = b'{"ok": true}'
                self.send_response(202 if self.path.startswith(("/pager", "/engine-pager")) else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                if self.path.rstrip("/") not in ("/messages", "/healthz"):
                    self.send_response(404)
                    self.end_headers()
                    return
                rows = [
                    {"at": m.at, "path": m.path, "channel": m.channel, "text": m.text()}
                    for m in sink.messages()
                ]
                answer = json.dumps({"messages": rows} if self.path.startswith("/messages") else {"ok": True})
                data = answer.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="chat-sink", daemon=True)
        self._thread.start()

    def messages(self, path_prefix: str = "") -> list[SinkMessage]:
        with self._lock:
            return [m for m in self._messages if m.path.startswith(path_prefix)]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m receiver.drill.chatsink",
        description="record chat and pager posts; GET /messages lists them",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    args = parser.parse_args(argv)
    sink = ChatSink(args.host, args.port)
    print(f"chat sink on {sink.url} (GET /messages)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
