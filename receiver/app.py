"""The Flask app factory (flaskr style). Blueprints stay thin; the work is in pipeline/incidents/store.

Everything the request handlers need lives on one :class:`ReceiverContext` in ``app.extensions["receiver"]``;
nothing is global, so tests can build as many apps as they like side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, jsonify
from prometheus_client import CollectorRegistry
from werkzeug.exceptions import HTTPException

from receiver.config import Settings, resolve_credentials
from receiver.errors import ReceiverError, error_body
from receiver.metrics import ReceiverMetrics
from receiver.pipeline import Pipeline, Responder
from receiver.runbooks.model import RunbookSet
from receiver.store import Store, open_database_store, open_store
from receiver.worker import Worker

if TYPE_CHECKING:
    from receiver.response_runtime import ResponseRuntime

__all__ = ["ReceiverContext", "create_app", "get_context", "open_settings_store"]

log = logging.getLogger("receiver.app")


@dataclass
class ReceiverContext:
    settings: Settings
    store: Store
    runbooks: RunbookSet
    metrics: ReceiverMetrics
    pipeline: Pipeline
    worker: Worker | None
    owns_store: bool = False
    response: ResponseRuntime | None = None
    console: Any = None
    stop_watching: Callable[[], None] | None = None  # the store's wake-up signal for the worker

    def close(self) -> None:
        """Stop the worker and the response threads, and close the store if the app opened it."""
        if self.stop_watching is not None:
            self.stop_watching()
        if self.worker is not None:
            self.worker.stop()
        if self.response is not None:
            self.response.stop()
        if self.console is not None:
            self.console.close()
        if self.owns_store:
            self.store.close()


def get_context() -> ReceiverContext:
    context: ReceiverContext = current_app.extensions["receiver"]
    return context


def open_settings_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The store the settings name: PostgreSQL at ``database_url``, else SQLite in ``data_dir``."""
    if settings.database_url:
        return open_database_store(
            settings.database_url,
            password_file=settings.database_password_file,
            rejected_body_cap=settings.rejected_body_cap,
            pool_size=settings.database_pool_size,
            migrate=migrate,
        )
    return open_store(
        settings.data_dir,
        rejected_body_cap=settings.rejected_body_cap,
        busy_timeout_ms=settings.busy_timeout_ms,
        migrate=migrate,
    )


def _load_runbooks(settings: Settings) -> RunbookSet:
    from receiver.runbooks import load_runbooks  # the loader pulls in jsonschema; only needed here

    loaded: RunbookSet = load_runbooks(settings.runbooks_dir)
    return loaded


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    runbooks: RunbookSet | None = None,
    metrics_registry: CollectorRegistry | None = None,
    responder: Responder | None = None,
    start_worker: bool | None = None,
) -> Flask:
    """Build the receiver app. Missing parts are made from ``settings`` (store in ``data_dir``, runbooks
    from ``runbooks_dir``, tokens from files or generated). ``app.extensions["receiver"].close()`` stops it.
    ``start_worker`` (default: ``settings.run_worker``) starts the worker, scheduler and outbox threads.
    """
    settings = resolve_credentials(settings)
    if start_worker is None:
        start_worker = settings.run_worker
    owns_store = store is None
    if store is None:
        store = open_settings_store(settings)
    if runbooks is None:
        runbooks = _load_runbooks(settings)
    metrics = ReceiverMetrics(
        metrics_registry if metrics_registry is not None else CollectorRegistry(),
        store,
        replica=settings.replica,
    )
    response: ResponseRuntime | None = None
    if responder is None and settings.responses:
        from receiver.response_runtime import build_response_runtime

        response = build_response_runtime(settings, store, runbooks, metrics_registry=metrics.registry)
        responder = response.responder
    pipeline = Pipeline(
        store, runbooks, responder, metrics=metrics, max_attempts=settings.worker_max_attempts
    )
    worker = (
        Worker(
            pipeline,
            poll_interval=settings.worker_poll_interval,
            respond_threads=settings.respond_concurrency,
            lease_seconds=settings.lease_seconds,
        )
        if start_worker
        else None
    )

    app = Flask("receiver")
    app.config.update(MAX_CONTENT_LENGTH=None, JSON_SORT_KEYS=False)
    context = ReceiverContext(settings, store, runbooks, metrics, pipeline, worker, owns_store, response)
    app.extensions["receiver"] = context

    from receiver.api import admin, health, incidents, openapi, webhook
    from receiver.api import runbooks as runbook_pages

    app.register_blueprint(webhook.bp)
    app.register_blueprint(incidents.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(runbook_pages.bp)
    from receiver.api import approvals, pagerduty, slack

    app.register_blueprint(approvals.bp)
    app.register_blueprint(slack.bp)
    app.register_blueprint(pagerduty.bp)

    from receiver.console.views import init_console

    init_console(app, settings)  # the console under / (sessions live in the store: no signing secret)
    context.console = app.extensions["console"]

    app.register_blueprint(openapi.bp)  # describes every route above: tests/unit/test_openapi.py
    app.wsgi_app = webhook.WebhookFastPath(app.wsgi_app, context)  # type: ignore[method-assign]

    @app.errorhandler(ReceiverError)
    def _receiver_error(exc: ReceiverError) -> Any:
        return jsonify(
            error_body(exc.http_status, type(exc).__name__, exc.message, exc.problems)
        ), exc.http_status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]  # e.g. Allow
        return jsonify(error_body(status, type(exc).__name__, exc.description or exc.name)), status, headers

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error")
        return jsonify(error_body(500, "InternalError", "internal error; see the receiver log")), 500

    if worker is not None:
        worker.start()
        context.stop_watching = store.watch(worker.notify_remote)  # another replica's commit wakes it
        if response is not None:
            response.start()
    log.info(
        "receiver %s ready: database %s, %d runbook(s)%s",
        settings.replica,
        store.description,
        len(runbooks),
        "" if worker is not None else "; web only (run_worker false): another replica on it does the work",
    )
    return app
