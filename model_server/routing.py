"""What the model server serves at one instant: the loaded versions and an immutable routing table.

:class:`~model_server.server.ModelServer` builds a new :class:`Routing` on every registry change and swaps
it in whole, so a request reads one consistent snapshot; kept apart from the server so the snapshot and
its weighted choice can be read (and tested) without the registry follower around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_server.instrumentation import VersionInstruments

__all__ = ["Routing", "Served"]


@dataclass(frozen=True)
class Served:
    """One loaded version: its estimator (None for non-classifiers), instruments and metadata."""

    version: str
    estimator: Any
    instruments: VersionInstruments
    impute: np.ndarray
    metadata: Mapping[str, Any]
    positive_rate: float


@dataclass(frozen=True)
class Routing:
    """An immutable snapshot of what to serve; replaced wholesale on every registry change."""

    generation: int
    active: str | None
    traffic: dict[str, float]
    mode: str
    guardrail_level: int
    served: dict[str, Served] = field(default_factory=dict)
    tools_blocked: bool = False
    _choices: tuple[str, ...] = ()
    _cumulative: tuple[float, ...] = ()

    @classmethod
    def build(
        cls,
        generation: int,
        active: str | None,
        traffic: Mapping[str, float],
        mode: str,
        guardrail_level: int,
        served: dict[str, Served],
        *,
        tools_blocked: bool = False,
    ) -> Routing:
        weighted = [(v, float(w)) for v, w in sorted(traffic.items()) if w > 0 and v in served]
        if not weighted and active in served:
            weighted = [(str(active), 100.0)]
        total = sum(w for _, w in weighted)
        running, cumulative = 0.0, []
        for _, w in weighted:
            running += w / total
            cumulative.append(running)
        return cls(
            generation,
            active,
            dict(traffic),
            mode,
            guardrail_level,
            served,
            tools_blocked,
            tuple(v for v, _ in weighted),
            tuple(cumulative),
        )

    def choose(self, rnd: float) -> Served | None:
        for version, edge in zip(self._choices, self._cumulative, strict=True):
            if rnd < edge:
                return self.served[version]
        return self.served[self._choices[-1]] if self._choices else None
