"""The storage interface behind :class:`model_registry.Registry`.

The registry's rules (last known good, refusals, validation) live in :mod:`model_registry.registry` and
are shared by every backend. A backend only has to load a model's state and apply one change atomically:
``apply`` reads the current state under a write lock, calls ``change(current)`` (which returns the new
state or raises to abort), then writes the new state, bumps ``generation`` and appends one audit entry
in the same transaction. If ``change`` raises, nothing is written. Every field of
:class:`~model_registry.state.ModelState` is stored, ``tools_blocked`` included (``False`` for a model
stored before the field existed).

Two backends: :class:`model_registry.sqlite.SQLiteBackend` and
:class:`model_registry.mlflow_backend.MLflowBackend`, which maps the state like this
(:mod:`model_registry.mlflow_mapping`):

==========================  ==================================================================
registry                    MLflow
==========================  ==================================================================
model / version             registered model / model version (``version`` kept in a tag
                            ``registry.version`` because MLflow numbers versions itself)
artifact_path               tag ``registry.artifact_path`` (the MLflow ``source`` is the copy in the
                            version's registration run; a plain MLflow version: its ``source``)
metadata, baseline          version tags ``registry.metadata`` / an artifact ``baseline.json``
                            (its URI in the version tag ``registry.baseline``)
active_version              alias ``champion``
last known good             alias ``last-known-good`` (moved by the backend after each change
                            so MLflow users see it; the rule itself stays the shared one)
traffic, mode, guardrail    registered-model tags ``registry.traffic`` (JSON),
                            ``registry.mode``, ``registry.guardrail_level``
tools_blocked               registered-model tag ``registry.tools_blocked`` (``true``/``false``;
                            a model without the tag reads as ``false``)
unhealthy, served_healthy   version tags ``registry.unhealthy`` / ``registry.served_healthy``
generation                  registered-model tag ``registry.generation``
audit history               one MLflow run per change in the experiment ``model-registry-audit``
seq                         the MLflow version number
==========================  ==================================================================

MLflow has no multi-object transactions, so ``apply`` there is optimistic on the ``registry.generation``
tag, with the next generation claimed by creating a uniquely named experiment (see
:mod:`model_registry.mlflow_backend`); a lost race raises :class:`WriteConflictError` (nothing written,
retry). A writer killed mid-change can leave part of it applied: weaker than SQLite's ``BEGIN IMMEDIATE``.
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
