"""The action ledger as the executor sees it: exactly-once claims for action steps.

A step is identified by ``(incident_id, phase, step_id, kind)``; whoever inserts that row owns the step.
The rows and the claim's atomicity (cooldown and flap guard decided in the same transaction) live in the
store (:mod:`receiver.store.ledger`), behind the :class:`Ledger` protocol, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

from receiver.store.base import FINAL_STATES, ActionLedger, Claim, GuardPolicy, LedgerKey, LedgerRow

#: the protocol the executor depends on
Ledger = ActionLedger

__all__ = ["FINAL_STATES", "Claim", "GuardPolicy", "Ledger", "LedgerKey", "LedgerRow"]
