"""Retention policy: prune what is older than ``retention_days``, keeping every incident's summary and review.

The store only knows how to prune rows (:mod:`receiver.store.retention`); this module decides what and when,
and renders each closed incident's review (:func:`receiver.review.render_review`) from its full timeline
before the store deletes that timeline. Used two ways:

* :class:`RetentionWorker`, a thread in every replica (started with the response side): replicas take turns
  through a lease in the database, each pass works in short batches within a time budget, so a backlog
  (the first run on an old database) never holds the database for long, and a pass that ran out of budget
  goes on soon after;
* ``receiver db prune --older-than 90d``, one full pass now.

Ages under :data:`MIN_AGE_SECONDS` are refused: the action guards (cooldown, flap guard) read the ledger of
recently closed incidents, and pruning it early would let a rollback loop through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from receiver.errors import ConfigError, NotFound
from receiver.review import render_review
from receiver.store.base import IncidentDetail, ReviewToArchive, Store
from receiver.store.sql import Clock

__all__ = ["MIN_AGE_SECONDS", "PruneReport", "Retention", "RetentionWorker"]

log = logging.getLogger("receiver.retention")

MIN_AGE_SECONDS = 86400.0
#: the lease replicas take turns on
LEASE_NAME = "retention"


@dataclass
class PruneReport:
    notifications: int = 0  # bodies emptied
    rejected: int = 0  # bodies emptied
    incidents: int = 0  # archived: review stored, timeline and the rest deleted
    complete: bool = True  # False: the time budget ran out with work left

    def summary(self) -> str:
        return (
            f"{self.notifications} notification bodies, {self.rejected} rejected bodies, "
            f"{self.incidents} closed incidents (reviews kept)"
        )


def check_age(seconds: float) -> float:
    """``seconds`` if it is a safe age to prune at; ConfigError otherwise."""
    if seconds < MIN_AGE_SECONDS:
        raise ConfigError(
            f"an age of {seconds / 86400:g} days is too short to prune at: at least 1 day (the action "
            "guards read the ledger of recently closed incidents)"
        )
    return seconds


class Retention:
    """One pruning pass over the store; every step is a short idempotent batch."""

    def __init__(
        self,
        store: Store,
        max_age_seconds: float,
        *,
        clock: Clock = time.time,
        render: Callable[[IncidentDetail], str] = render_review,
        body_batch: int = 200,  # SQLite write lock per batch: 500 bodies of 4 KB took 26-54 ms
        incident_batch: int = 25,
    ) -> None:
        self.store, self.clock, self.render = store, clock, render
        self.max_age = check_age(max_age_seconds)
        self.body_batch, self.incident_batch = body_batch, incident_batch
        self._after_id = 0  # where an unfinished pass goes on

    def prune(
        self, *, budget_seconds: float | None = None, between: Callable[[], None] | None = None
    ) -> PruneReport:
        """Prune everything older than the age, or as much as fits in ``budget_seconds`` (at least one
        batch; the next call goes on from there); ``between`` runs after every batch (the worker renews its
        lease there)."""
        rows = self.store.retention
        cutoff = self.clock() - self.max_age
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        report = PruneReport()

        def out_of_time() -> bool:
            if between is not None:
                between()
            if deadline is not None and time.monotonic() >= deadline:
                report.complete = False
                return True
            return False

        for name, step in (
            ("notifications", rows.prune_notification_bodies),
            ("rejected", rows.prune_rejected_bodies),
        ):
            while True:
                done = step(cutoff, limit=self.body_batch)
                setattr(report, name, getattr(report, name) + done)
                if done < self.body_batch:
                    break  # nothing of this kind left: on to the next, whatever the budget
                if out_of_time():
                    return report

        # incidents that must wait (work in flight) are passed over by id, also across slices of one pass
        while True:
            ids = rows.incidents_to_archive(cutoff, after_id=self._after_id, limit=self.incident_batch)
            if not ids:
                self._after_id = 0
                return report
            reviews = [r for r in (self._render(i) for i in ids) if r is not None]
            report.incidents += len(rows.archive_incidents(reviews, cutoff))
            self._after_id = ids[-1]
            if out_of_time():
                return report

    def _render(self, incident_id: int) -> ReviewToArchive | None:
        try:
            detail = self.store.get_incident(incident_id)
        except NotFound:
            return None
        last = max((entry.id for entry in detail.timeline), default=0)
        return ReviewToArchive(incident_id, self.render(detail), last)


class RetentionWorker:
    """The periodic job: every ``interval`` seconds, the replica holding the lease prunes in slices of
    ``slice_seconds``; with work left it goes on after ``pause`` seconds (letting other writers in)."""

    def __init__(
        self,
        retention: Retention,
        *,
        owner: str,
        interval: float = 3600.0,
        first_after: float = 60.0,
        slice_seconds: float = 2.0,
        pause: float = 1.0,
        lease_seconds: float = 60.0,
        retry_after: float = 60.0,
        on_pruned: Callable[[PruneReport], None] | None = None,
    ) -> None:
        self.retention, self.owner = retention, owner
        self.interval, self.first_after = interval, first_after
        self.slice_seconds, self.pause, self.lease_seconds = slice_seconds, pause, lease_seconds
        self.retry_after = retry_after
        self.on_pruned = on_pruned
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> PruneReport | None:
        """One slice if this replica holds (or takes) the lease; None when another replica holds it."""
        rows = self.retention.store.retention
        if not rows.try_lease(LEASE_NAME, self.owner, self.lease_seconds):
            return None

        def renew() -> None:
            rows.try_lease(LEASE_NAME, self.owner, self.lease_seconds)

        report = self.retention.prune(budget_seconds=self.slice_seconds, between=renew)
        if report.complete:
            rows.release_lease(LEASE_NAME, self.owner)
        if self.on_pruned is not None:
            self.on_pruned(report)
        if report.notifications or report.rejected or report.incidents:
            log.info("retention pruned %s%s", report.summary(), "" if report.complete else "; more to do")
        return report

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="receiver-retention", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        wait = self.first_after
        while not self._stop.wait(wait):
            try:
                report = self.run_once()
            except Exception:
                log.exception("retention pass failed; retrying in %.0fs", self.retry_after)
                wait = self.retry_after
                continue
            wait = self.pause if report is not None and not report.complete else self.interval
