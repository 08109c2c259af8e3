"""The model server's HTTP face: the Flask app around a :class:`~model_server.server.ModelServer` (endpoints
listed in :mod:`model_server.server`), and a waitress thread that tests and drills can stop.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from model_server.faults import FaultSpec, FaultSpecError
from model_server.server import MAX_BODY_BYTES, ModelServer, RequestError, ServerConfig

__all__ = ["BackgroundServer", "create_app", "serve_background"]

log = logging.getLogger("model_server")


def _error(status: int, message: str, problems: Sequence[str] = ()) -> Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if problems:
        body["problems"] = list(problems)
    response = jsonify({"error": body})
    response.status_code = status
    return response


def create_app(server: ModelServer) -> Flask:
    """The Flask app around ``server`` (no globals: everything hangs off this closure)."""
    app = Flask("model_server")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    token = server.config.admin_token

    def json_body() -> Any:
        body = request.get_json(silent=True)
        if body is None:
            raise RequestError(400, "body must be valid JSON (Content-Type: application/json)")
        return body

    @app.errorhandler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        return _error(exc.status, exc.message, exc.problems)

    @app.errorhandler(413)
    def _too_large(_exc: Exception) -> Response:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")

    @app.post("/predict")
    def predict() -> Response:
        return jsonify(server.predict(json_body()))

    @app.post("/feedback")
    def feedback() -> Response:
        return jsonify(server.feedback(json_body()))

    @app.post("/generate")
    def generate() -> Response:
        return jsonify(server.generate(json_body()))

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(server.metrics_registry), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Response:
        routing = server.routing
        ok = bool(routing.served)
        response = jsonify(
            {
                "status": "ok" if ok else "unavailable",
                "active_version": routing.active,
                "generation": routing.generation,
                "last_sync_error": server.last_sync_error,
            }
        )
        response.status_code = 200 if ok else 503
        return response

    @app.get("/state")
    def state() -> Response:
        return jsonify(server.describe())

    @app.route("/admin/faults", methods=["GET", "POST", "DELETE"])
    def faults() -> Response:
        if not token:
            return _error(403, "admin API disabled: no admin token configured")
        supplied = request.headers.get("Authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token")
        if request.method == "POST":
            try:
                scope, spec = FaultSpec.from_json(json_body())
            except FaultSpecError as exc:
                return _error(400, "invalid fault spec", exc.problems)
            server.faults.set(scope, spec)
            log.warning("fault injection set for %s: %s", scope, spec.to_dict())
        elif request.method == "DELETE":
            server.faults.clear(request.args.get("version"))
            log.warning("fault injection cleared for %s", request.args.get("version") or "all versions")
        return jsonify({"faults": server.faults.snapshot()})

    return app


@dataclass
class BackgroundServer:
    """A model server on a waitress thread (tests and drills); ``stop()`` shuts everything down."""

    server: ModelServer
    url: str
    _stopping: threading.Event
    _thread: threading.Thread

    def stop(self) -> None:
        self.server.stop()
        self._stopping.set()
        self._thread.join(timeout=10)


def serve_background(config: ServerConfig, **kwargs: Any) -> BackgroundServer:
    """Start a server (registry sync, poller, waitress) on ``config.host:config.port`` (0 = any free port)."""
    from waitress import create_server

    server = ModelServer(config, **kwargs)
    server.start()
    wsgi: Any = create_server(create_app(server), host=config.host, port=config.port, threads=config.threads)
    stopping = threading.Event()

    def loop() -> None:
        # waitress's own run() cannot be stopped from another thread without closing sockets under a
        # running select(); step its loop here and close in the same thread instead.
        try:
            while not stopping.is_set():
                wsgi.asyncore.loop(timeout=0.1, map=wsgi._map, count=1)
        finally:
            wsgi.close()
            wsgi.task_dispatcher.shutdown()

    thread = threading.Thread(target=loop, name="waitress", daemon=True)
    thread.start()
    return BackgroundServer(server, f"http://{config.host}:{wsgi.effective_port}", stopping, thread)
