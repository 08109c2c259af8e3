"""The metric contract's tunables and label constants, and the baseline shape it reads.

Kept apart from the recording state (:mod:`model_server.recording`) and the scrape-time export
(:mod:`model_server.exposition`) because both read them, and because a model team configuring the
instrumentation needs only this module's names (all re-exported by :mod:`model_server.instrumentation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from model_server.psi import DEFAULT_EPSILON, PSIThresholds

__all__ = [
    "DEFAULT_LATENCY_BUCKETS",
    "DEFAULT_SCORE_BUCKETS",
    "DEFAULT_TOOL_NAMES",
    "EXTRA_FEATURE_LABEL",
    "OTHER_TOOL_LABEL",
    "BaselineLike",
    "FeatureBaselineLike",
    "InstrumentationConfig",
]

DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DEFAULT_SCORE_BUCKETS: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(1, 11))
EXTRA_FEATURE_LABEL = "_extra"
#: Tool names exported as themselves in ``model_tool_calls_total``; any other name counts as ``_other``.
DEFAULT_TOOL_NAMES: frozenset[str] = frozenset(
    {
        "web_browse",
        "code_exec",
        "send_email",
        "file_write",
        "file_read",
        "shell",
        "http_request",
        "search",
        "calculator",
        "weather",
        "translate",
        "calendar",
    }
)
OTHER_TOOL_LABEL = "_other"


class FeatureBaselineLike(Protocol):
    """One feature of a baseline: interior bin ``edges`` (open-ended outer bins), proportions, range."""

    # read-only properties, so that a frozen dataclass (``model_registry.FeatureBaseline``) fits
    @property
    def name(self) -> str: ...
    @property
    def edges(self) -> Sequence[float]: ...
    @property
    def proportions(self) -> Sequence[float]: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...


class BaselineLike(Protocol):
    """What the instrumentation reads from a registry baseline (``model_registry.Baseline`` fits)."""

    @property
    def auc(self) -> float | None: ...
    @property
    def score_mean(self) -> float: ...
    @property
    def score_std(self) -> float: ...
    @property
    def positive_rate(self) -> float: ...
    @property
    def features(self) -> Sequence[FeatureBaselineLike]: ...


@dataclass(frozen=True)
class InstrumentationConfig:
    """Window sizes and tolerances.

    ``range_tolerance`` widens the baseline [min, max] by that fraction of its span on each side before a
    value counts as out of range (a constant feature uses span = max(|x|, 1)).
    """

    psi_window: int = 1000
    psi_min_samples: int = 100
    psi_epsilon: float = DEFAULT_EPSILON
    psi_thresholds: PSIThresholds = field(default_factory=PSIThresholds)
    psi_flush_every: int = 32
    auc_window: int = 2000
    pending_max: int = 100_000
    pending_ttl_seconds: float = 3600.0
    range_tolerance: float = 0.1
    score_buckets: tuple[float, ...] = DEFAULT_SCORE_BUCKETS
    tool_names: frozenset[str] = DEFAULT_TOOL_NAMES
