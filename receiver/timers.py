"""Durable timers (verification checks, escalation deadlines, the status-update cadence): the records and
the protocol. The rows live in the store (:mod:`receiver.store.timers`); the scheduler fires them."""

from __future__ import annotations

from receiver.store.base import TIMER_KINDS, Timer, TimerQueue

__all__ = ["TIMER_KINDS", "Timer", "TimerQueue"]
