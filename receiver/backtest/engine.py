"""Replay alerting rules over a time range: range queries at the evaluation interval, then ``for:``.

The state machine in :func:`apply_for_semantics` follows Prometheus 2.42's ``AlertingRule.Eval``:

* a label set present in the result becomes *pending* at that evaluation (``active_at``);
* a pending alert fires at the first evaluation where ``t - active_at >= for`` (with ``for: 0`` it fires
  at the evaluation that made it pending);
* a pending alert missing from one evaluation is dropped (a gap resets ``for:``);
* a firing alert missing from an evaluation resolves there, unless ``keep_firing_for`` is set: then it
  keeps firing while ``t - first_missing_evaluation < keep_firing_for``, and its return cancels the countdown.

Evaluations start at ``start`` (state before it is unknown, so an alert already true at ``start`` becomes
pending there) and use each group's ``interval`` unless a ``step`` override is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from receiver.backtest.promql import Inliner
from receiver.backtest.rules import AlertRule, RuleGroup
from receiver.errors import BacktestError, PrometheusError, PrometheusUnavailable

__all__ = [
    "AlertResult",
    "BacktestResult",
    "Episode",
    "LabelKey",
    "RangeQuerier",
    "apply_for_semantics",
    "query_presence",
    "run_backtest",
]

LabelKey = tuple[tuple[str, str], ...]
_MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series in one range query
_LABEL_TEMPLATE_RE = re.compile(r"\{\{\s*(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


class _Series(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def values(self) -> list[tuple[float, float]]: ...


class RangeQuerier(Protocol):
    """What the engine needs from a Prometheus client (``receiver.prom.PrometheusClient`` fits)."""

    def query_range(self, expr: str, start: float, end: float, step: float) -> Sequence[_Series]: ...


@dataclass(frozen=True)
class Episode:
    """One life of an alert label set: pending from ``active_at``; firing from ``fired_at`` (``None`` if it
    never fired); inactive at ``resolved_at`` (``None`` if still active at the end of the range)."""

    labels: Mapping[str, str]
    active_at: float
    fired_at: float | None
    resolved_at: float | None

    @property
    def fired(self) -> bool:
        return self.fired_at is not None


@dataclass
class AlertResult:
    rule: AlertRule
    expr: str
    step: float
    episodes: list[Episode] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def firing(self) -> list[Episode]:
        return [e for e in self.episodes if e.fired]

    @property
    def pending_only(self) -> list[Episode]:
        return [e for e in self.episodes if not e.fired]


@dataclass
class BacktestResult:
    start: float
    end: float
    alerts: list[AlertResult]


@dataclass
class _State:
    labels: Mapping[str, str]
    active_at: float
    fired_at: float | None = None
    keep_firing_since: float | None = None


def apply_for_semantics(
    timestamps: Sequence[float],
    present: Mapping[LabelKey, Iterable[float]],
    for_seconds: float,
    keep_firing_for_seconds: float = 0.0,
) -> list[Episode]:
    """Episodes of every label set, given the evaluation ``timestamps`` and, per label set, the timestamps at
    which the alert expression returned it. Pure; see the module docstring for the rules."""
    seen: dict[float, set[LabelKey]] = {}
    for key, stamps in present.items():
        for stamp in stamps:
            seen.setdefault(round(stamp, 3), set()).add(key)
    active: dict[LabelKey, _State] = {}
    episodes: list[Episode] = []
    for ts in sorted(timestamps):
        now_present = seen.get(round(ts, 3), set())
        for key in now_present:
            if key not in active:
                active[key] = _State(dict(key), ts)
        for key in list(active):
            state = active[key]
            if key not in now_present:
                keep_firing = False
                if state.fired_at is not None and keep_firing_for_seconds > 0:
                    if state.keep_firing_since is None:
                        state.keep_firing_since = ts
                    keep_firing = ts - state.keep_firing_since < keep_firing_for_seconds
                if not keep_firing:
                    episodes.append(Episode(state.labels, state.active_at, state.fired_at, ts))
                    del active[key]
                    continue
            else:
                state.keep_firing_since = None
            if state.fired_at is None and ts - state.active_at >= for_seconds:
                state.fired_at = ts
    episodes.extend(Episode(s.labels, s.active_at, s.fired_at, None) for s in active.values())
    episodes.sort(key=lambda e: (e.active_at, sorted(e.labels.items())))
    return episodes


def _alert_labels(series_labels: Mapping[str, str], rule: AlertRule) -> LabelKey:
    labels = {k: v for k, v in series_labels.items() if k != "__name__"}
    for key, value in rule.labels.items():
        labels[key] = _LABEL_TEMPLATE_RE.sub(lambda m: series_labels.get(m.group(1), ""), value)
    labels = {k: v for k, v in labels.items() if v != ""}
    labels["alertname"] = rule.alert
    return tuple(sorted(labels.items()))


def _evaluation_times(start: float, end: float, step: float) -> list[float]:
    count = int((end - start) // step) + 1
    return [start + i * step for i in range(count)]


def _query(
    client: RangeQuerier, rule: AlertRule, expr: str, start: float, end: float, step: float
) -> dict[LabelKey, list[float]]:
    present: dict[LabelKey, list[float]] = {}
    chunk_start = start
    while chunk_start <= end:
        chunk_end = min(end, chunk_start + (_MAX_POINTS - 1) * step)
        try:
            result = client.query_range(expr, chunk_start, chunk_end, step)
        except PrometheusUnavailable as exc:
            raise BacktestError(f"Prometheus is unreachable: {exc.message}") from exc
        except PrometheusError as exc:
            raise BacktestError(
                f"{rule.source}: group {rule.group!r} alert {rule.alert!r}: query failed: {exc.message}",
                [f"expression sent: {expr}"],
            ) from exc
        for series in result:
            key = _alert_labels(series.labels, rule)
            present.setdefault(key, []).extend(ts for ts, _ in series.values)
        chunk_start = chunk_end + step
    return present


def query_presence(
    client: RangeQuerier, rule: AlertRule, expr: str, start: float, end: float, step: float
) -> tuple[list[float], dict[LabelKey, list[float]]]:
    """The evaluation times over ``[start, end]`` and, per alert label set, when ``expr`` returned it
    (``expr`` must already be inlined); the input of :func:`apply_for_semantics`."""
    timestamps = _evaluation_times(start, end, step)
    return timestamps, _query(client, rule, expr, start, timestamps[-1], step)


def run_backtest(
    client: RangeQuerier, groups: Sequence[RuleGroup], start: float, end: float, *, step: float | None = None
) -> BacktestResult:
    """Evaluate every alerting rule of ``groups`` over ``[start, end]``.

    Recording rules of all groups are inlined into the alert expressions
    (see :mod:`receiver.backtest.promql`).
    ``step`` overrides every group's evaluation interval (coarser is faster but less exact).
    """
    if end <= start:
        raise BacktestError(f"the end of the range ({end}) must be after its start ({start})")
    if step is not None and step <= 0:
        raise BacktestError("step must be positive")
    inliner = Inliner([rule for group in groups for rule in group.recording])
    results: list[AlertResult] = []
    for group in groups:
        interval = step or group.interval
        timestamps = _evaluation_times(start, end, interval)
        for rule in group.alerting:
            try:
                inlined = inliner.inline(rule.expr, interval)
            except BacktestError as exc:
                raise BacktestError(
                    f"{rule.source}: group {group.name!r} alert {rule.alert!r}: {exc.message}"
                ) from exc
            present = _query(client, rule, inlined.expr, start, timestamps[-1], interval)
            episodes = apply_for_semantics(
                timestamps, present, rule.for_seconds, rule.keep_firing_for_seconds
            )
            results.append(AlertResult(rule, inlined.expr, interval, episodes, inlined.warnings))
    return BacktestResult(start, end, results)
