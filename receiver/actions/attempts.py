"""How one claimed step is attempted: a lease heartbeat, a timeout per attempt, retries with backoff, and
the unknown rule (see :mod:`receiver.actions.executor`); every end is written to the ledger.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from receiver.actions.base import Action, ActionResult, ActionSettings
from receiver.actions.ledger import Ledger, LedgerKey
from receiver.actions.outcome import StepEvents, StepOutcome, describe, redact
from receiver.errors import ActionError, ActionOutcomeUnknown, ActionTimeout, ActionTransient
from receiver.leases import Heartbeat

__all__ = ["Attempts"]


class _HardTimeout(ActionTimeout):
    """The attempt did not return in time; its thread may still complete, so it is not blindly retried."""


class Attempts:
    """Runs a claimed ledger row's attempts on a worker pool (so per-thread resources are reused)."""

    def __init__(
        self,
        ledger: Ledger,
        settings: ActionSettings,
        events: StepEvents,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        owner: str,
        lease_seconds: float,
        grace_seconds: float,
        max_workers: int,
    ) -> None:
        self.ledger, self.settings, self.events = ledger, settings, events
        self.clock, self.sleep, self.owner = clock, sleep, owner
        self.lease_seconds, self.grace_seconds = lease_seconds, grace_seconds
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="action-attempt")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(
        self,
        key: LedgerKey,
        action: Action,
        row_id: int,
        invoke: Callable[[], ActionResult],
        timeout: float,
        retries: int,
        shown: dict[str, Any],
        timeline: list[dict[str, Any]],
    ) -> StepOutcome:
        def renew() -> None:
            self.ledger.renew(row_id, owner=self.owner, lease_until=self.clock() + self.lease_seconds)

        with Heartbeat(renew, self.lease_seconds / 3, name=f"lease-{key.kind}-{row_id}"):
            attempt = 0
            while True:
                attempt += 1
                lease_until = self.clock() + self.lease_seconds
                self.ledger.attempt(row_id, attempts=attempt, now=self.clock(), lease_until=lease_until)
                timeline.append(self.events.entry(key, "attempt", attempt=attempt, timeout=timeout))
                try:
                    result = self._call(invoke, timeout)
                except ActionOutcomeUnknown as exc:
                    # sent, no answer: it may have happened. Only an idempotent kind may send it again.
                    if attempt <= retries and action.idempotent:
                        self._back_off(key, attempt, describe(exc), timeline)
                        continue
                    why = "retries exhausted" if action.idempotent else f"{key.kind} is not idempotent"
                    return self._unknown(key, row_id, describe(exc), why, attempt, shown, timeline)
                except ActionTransient as exc:
                    error = describe(exc)
                    hard = isinstance(exc, _HardTimeout)
                    if hard and not action.idempotent:  # the attempt may still complete: same as unknown
                        why = f"{key.kind} is not idempotent"
                        return self._unknown(key, row_id, error, why, attempt, shown, timeline)
                    if attempt <= retries:
                        self._back_off(key, attempt, error, timeline)
                        continue
                    return self._fail(key, row_id, error, attempt, shown, timeline, action.containment)
                except Exception as exc:
                    return self._fail(
                        key, row_id, describe(exc), attempt, shown, timeline, action.containment
                    )
                return self.done(key, row_id, result, attempt, shown, timeline)

    def _back_off(self, key: LedgerKey, attempt: int, error: str, timeline: list[dict[str, Any]]) -> None:
        """Record the failed attempt and wait out its exponential backoff before the next one."""
        delay = min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempt - 1))
        timeline.append(
            self.events.entry(key, "attempt_failed", attempt=attempt, error=error, retry_in=delay)
        )
        self.sleep(delay)

    def _call(self, invoke: Callable[[], ActionResult], timeout: float) -> ActionResult:
        """Run one attempt on the worker pool; stop waiting after ``timeout`` plus a grace period.

        Actions honour ``ctx.timeout`` themselves (HTTP and SQLite timeouts); this is the backstop for a
        call that ignores it. A pool (not a thread per attempt) so per-thread resources such as the store's
        thread-local SQLite connections are reused.
        """
        future = self._pool.submit(invoke)
        try:
            result = future.result(timeout=timeout + self.grace_seconds)
        except concurrent.futures.TimeoutError:
            raise _HardTimeout(f"attempt did not finish within its timeout of {timeout:g}s") from None
        if not isinstance(result, ActionResult):
            raise ActionError(f"action returned {type(result).__name__}, expected ActionResult")
        return result

    def _fail(
        self,
        key: LedgerKey,
        row_id: int,
        error: str,
        attempts: int,
        shown: dict[str, Any],
        timeline: list[dict[str, Any]],
        escalate: bool = False,
    ) -> StepOutcome:
        """A failed containment escalates: the model is not contained, a human must act."""
        self.ledger.finish(row_id, "failed", now=self.clock(), error=error, attempts=attempts)
        timeline.append(self.events.entry(key, "failed", attempt=attempts, error=error))
        return StepOutcome(
            key,
            "failed",
            error,
            error=error,
            attempts=attempts,
            params=shown,
            timeline=timeline,
            escalate=f"failed after {attempts} attempt(s): {error}" if escalate else None,
        )

    def _unknown(
        self,
        key: LedgerKey,
        row_id: int,
        error: str,
        why: str,
        attempts: int,
        shown: dict[str, Any],
        timeline: list[dict[str, Any]],
    ) -> StepOutcome:
        """Outcome ``unknown``: the request went out and no answer came; never re-sent, escalated.

        The ledger's ``unknown`` state is final (the step is never claimed again) and counts as acted for
        the cooldown and flap guards, like ``interrupted``."""
        reason = f"unknown: {error}; not re-sent ({why}): check the far side"
        self.ledger.finish(row_id, "unknown", now=self.clock(), reason=reason, error=error, attempts=attempts)
        timeline.append(self.events.entry(key, "unknown", attempt=attempts, error=error, escalate=reason))
        return StepOutcome(
            key,
            "unknown",
            reason,
            error=error,
            escalate=reason,
            attempts=attempts,
            params=shown,
            timeline=timeline,
        )

    def done(
        self,
        key: LedgerKey,
        row_id: int,
        result: ActionResult,
        attempts: int,
        shown: dict[str, Any],
        timeline: list[dict[str, Any]],
        event: str | None = None,
    ) -> StepOutcome:
        reason = result.summary if result.state != "succeeded" else None
        data = redact(result.data)
        self.ledger.finish(
            row_id, result.state, now=self.clock(), result=data, reason=reason, attempts=attempts
        )
        timeline.append(
            self.events.entry(
                key,
                event or result.state,
                attempt=attempts,
                summary=result.summary,
                result=data or None,
                escalate=result.escalate,
            )
        )
        return StepOutcome(
            key,
            result.state,
            result.summary,
            data=dict(data),
            escalate=result.escalate,
            attempts=attempts,
            params=shown,
            timeline=timeline,
        )
