"""Run the real receiver app on a real waitress server on loopback, in-process, and stop it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry
from waitress import create_server
from waitress.server import BaseWSGIServer

from receiver.app import ReceiverContext, create_app
from receiver.config import Secret, Settings, load_settings

__all__ = ["ADMIN_TOKEN", "WEBHOOK_TOKEN", "RunningReceiver", "make_settings", "start_receiver"]

WEBHOOK_TOKEN = "hook-token-for-tests"
ADMIN_TOKEN = "admin-token-for-tests"


def make_settings(data_dir: Path, runbooks_dir: Path, **overrides: Any) -> Settings:
    settings = load_settings(
        env={}, overrides={"data_dir": data_dir, "runbooks_dir": runbooks_dir, "host": "127.0.0.1", "port": 0}
    )
    return replace(
        settings,
        webhook_token=Secret(WEBHOOK_TOKEN),
        admin_token=Secret(ADMIN_TOKEN),
        worker_poll_interval=0.2,
        **{"replica": "r1", **overrides},
    )


@dataclass
class RunningReceiver:
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread
    url: str

    @property
    def context(self) -> ReceiverContext:
        context: ReceiverContext = self.app.extensions["receiver"]
        return context

    def stop(self) -> None:
        """Empty waitress's socket map so its loop ends on its own, then close sockets and the app."""
        sockets = dict(self.server._map)
        self.server._map.clear()
        self.thread.join(5)
        for dispatcher in sockets.values():
            dispatcher.close()
        self.server.task_dispatcher.shutdown()
        self.context.close()


def start_receiver(
    settings: Settings, *, port: int = 0, threads: int = 8, **app_kwargs: Any
) -> RunningReceiver:
    app_kwargs.setdefault("metrics_registry", CollectorRegistry())
    app = create_app(settings, **app_kwargs)
    server = create_server(app, host="127.0.0.1", port=port, threads=threads, asyncore_loop_timeout=0.1)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return RunningReceiver(app, server, thread, f"http://127.0.0.1:{server.effective_port}")
