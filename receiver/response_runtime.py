"""Assemble the response side from settings: ledger + executor, channels + outbox, Prometheus, timers.

:func:`build_response_runtime` returns a :class:`ResponseRuntime` holding the :class:`~receiver.responder.
Responder` (plugged into the pipeline) and the background threads it needs: the scheduler (timers), the
outbox worker (delivery) and the retention job (pruning past ``retention_days``, see
:mod:`receiver.retention`). ``start()``/``stop()`` manage them; nothing starts at import.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import requests
from prometheus_client import CollectorRegistry, Counter

from receiver.actions.base import ActionSettings
from receiver.actions.executor import ActionExecutor
from receiver.actions.registry import default_registry
from receiver.comms.channels import ChannelSet
from receiver.comms.outbox import Outbox, OutboxWorker
from receiver.comms.slack_app import SlackAppChannel
from receiver.config import Settings
from receiver.errors import ConfigError
from receiver.inbound import InboundWorker
from receiver.prom import PrometheusClient
from receiver.responder import Responder, ResponseSettings
from receiver.retention import PruneReport, Retention, RetentionWorker
from receiver.runbooks import RunbookSet
from receiver.scheduler import Scheduler
from receiver.store.base import Store

__all__ = ["ResponseRuntime", "build_response_runtime"]

log = logging.getLogger("receiver.response")


@dataclass
class ResponseRuntime:
    responder: Responder
    scheduler: Scheduler
    outbox: Outbox
    outbox_worker: OutboxWorker
    executor: ActionExecutor
    retention: RetentionWorker | None = None  # None when retention_days is 0 (keep everything)
    inbound: InboundWorker | None = None  # Slack interactions and PagerDuty webhooks, acted on from the store

    def start(self) -> None:
        self.resume_interrupted()  # at once, then every sweep interval in the scheduler thread
        self.scheduler.start()
        self.outbox_worker.start()
        if self.retention is not None:
            self.retention.start()
        if self.inbound is not None:
            self.inbound.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.outbox_worker.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.inbound is not None:
            self.inbound.stop()

    def resume_interrupted(self) -> None:
        """Apply the ledger's restart rule to steps whose owner (this process before a restart, or another
        replica) stopped renewing their lease."""
        try:
            self.responder.resume_interrupted()
        except Exception:
            log.exception("could not resume interrupted actions")


def _registry_reader(settings: Settings) -> Any:
    target = settings.registry_target
    if target is None:
        return None
    token_file = str(settings.registry_token_file) if settings.registry_token_file else None

    def read(model: str) -> Any:
        from model_registry import open_registry

        return open_registry(target, create=False, token_file=token_file).state(model)

    return read


def build_response_runtime(
    settings: Settings,
    store: Store,
    runbooks: RunbookSet,
    *,
    metrics_registry: CollectorRegistry | None = None,
    session: requests.Session | None = None,
) -> ResponseRuntime:
    session = session or requests.Session()
    action_settings = ActionSettings(
        registry_path=settings.registry_target,
        registry_token_file=str(settings.registry_token_file) if settings.registry_token_file else None,
        alertmanager_url=settings.alertmanager_url,
        http_allow_list=tuple(settings.http_allow_list),
        pager_url=settings.pager_url,
        pager_routing_key_file=str(settings.pager_routing_key_file)
        if settings.pager_routing_key_file
        else None,
        dry_run=settings.dry_run,
        cooldown_seconds=settings.cooldown_seconds * settings.time_scale,
        flap_max=settings.flap_max,
        flap_window_seconds=3600.0 * settings.time_scale,
        public_url=settings.public_url,
    )
    executor = ActionExecutor(
        store.ledger,
        default_registry(),
        action_settings,
        owner=f"{settings.replica}-{os.getpid()}",
        lease_seconds=settings.lease_seconds,
    )
    channels = ChannelSet.from_config(
        settings.channels, base_dir=settings.config_dir, environ=os.environ, session=session
    )
    for channel in channels.values():
        if isinstance(channel, SlackAppChannel):  # its threads and buttons live in the store
            channel.bind(store.chat_threads, store.approvals)
    outbox = Outbox(store.outbox, channels, registry=metrics_registry, lease_s=settings.lease_seconds)
    actions_total = Counter(
        "receiver_actions",
        "Runbook action steps by kind and result (succeeded, failed, refused, skipped, dry_run, interrupted)",
        ["kind", "result"],
        registry=metrics_registry if metrics_registry is not None else CollectorRegistry(),
    )
    timers = store.timers
    responder = Responder(
        store=store,
        runbooks=runbooks,
        executor=executor,
        action_settings=action_settings,
        outbox=outbox,
        channels=channels,
        prometheus=PrometheusClient(settings.prometheus_url, session=session),
        timers=timers,
        settings=ResponseSettings(
            time_scale=settings.time_scale,
            verify_interval=settings.verify_interval,
            public_url=settings.public_url,
            evidence_budget=settings.evidence_budget_seconds,
        ),
        session=session,
        registry_state=_registry_reader(settings),
        on_action=lambda kind, result: actions_total.labels(kind, result).inc(),
    )
    scheduler = Scheduler(
        timers,
        responder.timer_handlers(),
        interval=min(1.0, settings.worker_poll_interval),
        lease_seconds=settings.lease_seconds,
        sweep=responder.resume_interrupted,
        sweep_interval=max(0.5, settings.lease_seconds / 5),
    )
    outbox_worker = OutboxWorker(outbox, interval=min(1.0, settings.worker_poll_interval))
    inbound = InboundWorker(store, responder, interval=min(1.0, settings.worker_poll_interval))
    return ResponseRuntime(
        responder,
        scheduler,
        outbox,
        outbox_worker,
        executor,
        _retention_worker(settings, store, metrics_registry),
        inbound,
    )


def _retention_worker(
    settings: Settings, store: Store, metrics_registry: CollectorRegistry | None
) -> RetentionWorker | None:
    if not settings.retention_days:
        return None
    try:
        retention = Retention(store, settings.retention_days * 86400.0)
    except ConfigError as exc:
        raise ConfigError(f"setting 'retention_days': {exc.message}") from None
    pruned = Counter(
        "receiver_retention_pruned",
        "Rows pruned past retention_days: notification and rejected bodies, archived incidents",
        ["kind"],
        registry=metrics_registry if metrics_registry is not None else CollectorRegistry(),
    )

    def count(report: PruneReport) -> None:
        pruned.labels("notification_body").inc(report.notifications)
        pruned.labels("rejected_body").inc(report.rejected)
        pruned.labels("incident").inc(report.incidents)

    return RetentionWorker(retention, owner=f"{settings.replica}-{os.getpid()}", on_pruned=count)
