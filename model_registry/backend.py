"""The storage interface behind :class:`model_registry.Registry`.

The registry's rules (last known good, refusals, validation) live in :mod:`model_registry.registry` and
are shared by every backend. A backend only has to load a model's state and apply one change atomically:
``apply`` reads the current state under a write lock, calls ``change(current)`` (which returns the new
state or raises to abort), then writes the new state, bumps ``generation`` and appends one audit entry
in the same transaction. If ``change`` raises, nothing is written. Every field of
:class:`~model_registry.state.ModelState` is stored, ``tools_blocked`` included (``False`` for a model
stored before the field existed).

Only :class:`model_registry.sqlite.SQLiteBackend` is implemented. An MLflow Model Registry backend would
map the state like this:

==========================  ==================================================================
registry                    MLflow
==========================  ==================================================================
model / version             registered model / model version (``version`` kept in a tag
                            ``registry.version`` because MLflow numbers versions itself)
artifact_path               the model version ``source``
metadata, baseline          version tags ``registry.metadata`` / an artifact ``baseline.json``
active_version              alias ``champion``
last known good             alias ``last-known-good`` (moved by the backend after each change
                            so MLflow users see it; the rule itself stays the shared one)
traffic, mode, guardrail    registered-model tags ``registry.traffic`` (JSON),
                            ``registry.mode``, ``registry.guardrail_level``
tools_blocked               registered-model tag ``registry.tools_blocked`` (``true``/``false``;
                            a model without the tag reads as ``false``)
unhealthy, served_healthy   version tags ``registry.unhealthy`` / ``registry.served_healthy``
generation                  registered-model tag ``registry.generation``
audit history               registered-model tag per entry is too small; an append-only table
                            (or an MLflow run per change with params before/after)
==========================  ==================================================================

MLflow has no multi-object transactions, so ``apply`` there would be optimistic: read the
``registry.generation`` tag, compute, write the tags and aliases, re-read the generation and repair or
raise :class:`ConflictError` when another writer got in between. That is weaker than SQLite's
``BEGIN IMMEDIATE``; the SQLite backend is the one to use when several processes change the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from model_registry.state import AuditEntry, ModelState

__all__ = ["Change", "RegistryBackend"]

#: Computes the new state from the current one (None when the model does not exist yet); raises to abort.
Change = Callable[[ModelState | None], ModelState]


@runtime_checkable
class RegistryBackend(Protocol):
    """Where the registry keeps its state. Every method may raise ``RegistryUnavailableError``."""

    def models(self) -> list[str]:
        """Names of all models, sorted."""
        ...

    def load(self, model: str) -> ModelState | None:
        """A consistent snapshot of one model, or None when it does not exist."""
        ...

    def generation(self, model: str) -> int | None:
        """The change counter of a model (cheap), or None when it does not exist."""
        ...

    def history(self, model: str | None, limit: int) -> list[AuditEntry]:
        """Audit entries, newest first, for one model or all."""
        ...

    def apply(
        self, model: str, action: str, actor: str, reason: str, change: Change
    ) -> tuple[ModelState, AuditEntry]:
        """Apply one change atomically with its audit entry; returns the stored new state and the entry."""
        ...

    def integrity_problems(self) -> list[str]:
        """Storage-level consistency problems (empty when healthy)."""
        ...
