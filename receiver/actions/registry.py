"""Action kinds by name. Build one with :func:`default_registry`; tests may register extra kinds."""

from __future__ import annotations

from collections.abc import Iterable

from receiver.actions.base import Action
from receiver.errors import ActionParamError

__all__ = ["ActionRegistry", "default_registry"]


class ActionRegistry:
    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._kinds: dict[str, Action] = {}
        for action in actions:
            self.register(action)

    def register(self, action: Action) -> None:
        if not action.kind:
            raise ValueError(f"{type(action).__name__} has no kind name")
        if action.kind in self._kinds:
            raise ValueError(f"action kind {action.kind!r} is already registered")
        self._kinds[action.kind] = action

    def get(self, kind: str) -> Action:
        try:
            return self._kinds[kind]
        except KeyError:
            raise ActionParamError(
                f"unknown action kind {kind!r} (known: {', '.join(sorted(self._kinds))})"
            ) from None

    def kinds(self) -> list[str]:
        return sorted(self._kinds)


def default_registry() -> ActionRegistry:
    """Every built-in kind: rollback, traffic_split, fallback, guardrail, silence, http, page, notify."""
    from receiver.actions.fallback import FallbackAction
    from receiver.actions.guardrail import GuardrailAction
    from receiver.actions.http import HttpAction
    from receiver.actions.notify import NotifyAction
    from receiver.actions.page import PageAction
    from receiver.actions.rollback import RollbackAction
    from receiver.actions.silence import SilenceAction
    from receiver.actions.traffic_split import TrafficSplitAction

    return ActionRegistry(
        [
            RollbackAction(),
            TrafficSplitAction(),
            FallbackAction(),
            GuardrailAction(),
            SilenceAction(),
            HttpAction(),
            PageAction(),
            NotifyAction(),
        ]
    )
