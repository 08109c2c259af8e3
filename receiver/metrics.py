"""The receiver's own Prometheus metrics, always on an injected :class:`CollectorRegistry`.

Counters and the lag histogram are updated as things happen; incidents by state/severity, the queue depth
and the age of its oldest notification are read from the store at scrape time (so they are right across
restarts and processes; the engine's own alerts, ``alert_rules/engine_alerts.yml``, read them). With
several replicas on one database every series served at ``/metrics`` carries ``replica="<name>"``
(:meth:`ReceiverMetrics.exposition`), so per-replica counters do not collide and store-wide gauges can be
read from any one replica.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from receiver.store.base import Store
from receiver.version import build_info

__all__ = ["OUTCOMES", "ReceiverMetrics"]

#: ``receiver_notifications_total{outcome}`` values.
OUTCOMES = (
    "accepted",
    "invalid",
    "unauthorized",
    "too_large",
    "unsupported_media_type",
    "unavailable",
    "processed",
    "retried",
    "failed",
    "responded",
)

_ANSWER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _StoreCollector(Collector):
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store, self.clock = store, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        incidents = GaugeMetricFamily(
            "receiver_incidents", "Incidents by state and severity", labels=["state", "severity"]
        )
        depth = GaugeMetricFamily(
            "receiver_queue_depth", "Notifications received but not yet applied and responded to"
        )
        oldest = GaugeMetricFamily(
            "receiver_queue_oldest_seconds",
            "Age of the oldest notification received but not yet applied and responded to (0 when none)",
        )
        try:
            for (state, severity), count in sorted(self.store.incident_counts().items()):
                incidents.add_metric([state, severity], count)
            depth.add_metric([], self.store.pending_count())
            received = self.store.oldest_pending_ts()
        except Exception:
            return  # an unreadable store shows as missing series (and /readyz says why)
        oldest.add_metric([], 0.0 if received is None else max(0.0, self.clock() - received))
        yield incidents
        yield depth
        yield oldest


class _WithReplica(Collector):
    """Every family of ``registry`` with a ``replica`` label added to each sample."""

    def __init__(self, registry: CollectorRegistry, replica: str) -> None:
        self.registry, self.replica = registry, replica

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = [
                Sample(s.name, {**s.labels, "replica": self.replica}, s.value, s.timestamp, s.exemplar)
                for s in family.samples
            ]
            yield copy


class ReceiverMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        store: Store,
        *,
        replica: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.replica = replica
        self._served = CollectorRegistry(auto_describe=False)
        if replica:
            self._served.register(_WithReplica(registry, replica))
        self.notifications = Counter(
            "receiver_notifications", "Webhook notifications by outcome", ["outcome"], registry=registry
        )
        # children looked up once: labels() takes a lock and builds a key on every call
        self._by_outcome = {outcome: self.notifications.labels(outcome) for outcome in OUTCOMES}
        self.lag = Histogram(
            "receiver_processing_lag_seconds",
            "Time from a notification's durable receipt to its incident changes committed",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.webhook_answer = Histogram(
            "receiver_webhook_answer_seconds",
            "Time from a webhook request's first byte (its wait for a free thread included, behind the"
            " receiver's own HTTP front) to its answer",
            buckets=_ANSWER_BUCKETS,
            registry=registry,
        )
        registry.register(_StoreCollector(store, clock))
        info = build_info()
        self.build_info = Gauge(
            "receiver_build_info", "1, labelled with the running build", sorted(info), registry=registry
        )
        self.build_info.labels(**info).set(1)

    def exposition(self) -> bytes:
        """The text format of every metric, labelled with this replica when it has a name."""
        return generate_latest(self._served if self.replica else self.registry)

    def count(self, outcome: str) -> None:
        child = self._by_outcome.get(outcome)
        if child is None:
            child = self.notifications.labels(outcome)
        child.inc()
