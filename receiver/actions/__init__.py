"""Containment and comms actions: one module per kind, a registry of kinds, a ledger and an executor.

Import the pieces from their modules (``receiver.actions.executor`` etc.); nothing is imported here so
that loading the package does no work.
"""

__all__: list[str] = []
