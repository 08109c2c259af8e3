"""``receiver backtest --tune``: sweep each alert's threshold and ``for:`` over a grid on recorded history.

"Tune thresholds from history" as a command. For every alerting rule:

* its *threshold* is the first number compared against in its expression (``> 0.2``,
  ``> on (model) (14.4 * ...)``); every comparison against that same number is swept together (the
  toxicity rule compares two windows with 0.02). Rules without one (``up == 0``) sweep ``for:`` only.
* one range query per threshold value gives the evaluations at which the expression held; the ``for:``
  grid is then applied locally with Prometheus's state machine (:func:`apply_for_semantics`), so the
  sweep costs (thresholds) queries per alert, not (thresholds x for values).
* each setting is scored against the labelled incidents the alert is responsible for (its
  ``incident_type``): false firings, recall, median and max detection delay.

The report gives, per alert, the Pareto front (fewer false firings, higher recall, shorter delay: no
other setting is at least as good on all three and better on one), where today's setting sits, and a
suggested setting (fewest false firings, then highest recall, then shortest median delay; closest to
today's among equals, never ``for: 0`` unless today's is) as a unified diff of the rule file.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from receiver.backtest.engine import (
    AlertResult,
    BacktestResult,
    RangeQuerier,
    apply_for_semantics,
    query_presence,
)
from receiver.backtest.promql import Inliner
from receiver.backtest.rules import AlertRule, RuleGroup
from receiver.backtest.scoring import Incident, score
from receiver.durations import format_duration
from receiver.errors import BacktestError

__all__ = [
    "DEFAULT_FOR_FACTORS",
    "DEFAULT_THRESHOLD_FACTORS",
    "AlertTuning",
    "Setting",
    "find_threshold",
    "render_tuning",
    "rule_diff",
    "tune",
    "tuning_json",
    "with_threshold",
]

DEFAULT_THRESHOLD_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
DEFAULT_FOR_FACTORS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)

# a comparison, optional bool / on(...) / group_left(...), an optional "(", then the number compared with
_THRESHOLD_RE = re.compile(
    r"(?P<head>(?:>=|<=|>|<)(?!=)\s*(?:bool\s+)?(?:(?:on|ignoring)\s*\([^)]*\)\s*)?"
    r"(?:group_(?:left|right)\s*(?:\([^)]*\))?\s*)?\(?\s*)(?P<num>[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)(?![0-9.a-zA-Z_:])"
)


@dataclass(frozen=True)
class Setting:
    threshold: float | None
    for_seconds: float
    false_firings: int
    recall: float | None
    median_delay: float | None
    max_delay: float | None

    def key(self) -> tuple[float, float, float]:
        """Smaller is better on every axis."""
        delay = math.inf if self.median_delay is None else self.median_delay
        return (self.false_firings, -(self.recall or 0.0), delay)

    def dominates(self, other: Setting) -> bool:
        mine, theirs = self.key(), other.key()
        return all(a <= b for a, b in zip(mine, theirs, strict=True)) and mine != theirs


@dataclass
class AlertTuning:
    rule: AlertRule
    threshold: float | None
    incidents: int
    settings: list[Setting] = field(default_factory=list)

    @property
    def today(self) -> Setting:
        return next(
            s
            for s in self.settings
            if s.threshold == self.threshold and s.for_seconds == self.rule.for_seconds
        )

    @property
    def front(self) -> list[Setting]:
        front = [s for s in self.settings if not any(o.dominates(s) for o in self.settings)]
        unique: dict[tuple[float, float, float], Setting] = {}
        for s in sorted(front, key=lambda s: (*s.key(), s.for_seconds, s.threshold or 0.0)):
            unique.setdefault(s.key(), s)  # one row per outcome: the shortest for:, smallest threshold
        return list(unique.values())

    @property
    def suggested(self) -> Setting:
        """Fewest false firings, then highest recall, then shortest median delay; among equals the one
        closest to today's. ``for: 0`` is only suggested if today's is 0: a history never holds every blip,
        and without ``for:`` a single evaluation pages."""
        today = self.today
        pool = [s for s in self.settings if s.for_seconds > 0 or today.for_seconds == 0] or self.settings
        fewest = min(s.false_firings for s in pool)
        candidates = [s for s in pool if s.false_firings == fewest]

        def distance(s: Setting) -> float:
            ratio = s.threshold / self.threshold if s.threshold and self.threshold else 1.0
            return abs(math.log(ratio)) + abs(s.for_seconds - today.for_seconds) / max(
                today.for_seconds, 60.0
            )

        best = min(candidates, key=lambda s: (*s.key(), distance(s)))
        return today if today.key() == best.key() else best


def find_threshold(expr: str) -> float | None:
    """The first number the expression compares against, or None."""
    match = _THRESHOLD_RE.search(expr)
    return float(match.group("num")) if match else None


def _number(value: float) -> str:
    return format(value, ".6g")


def with_threshold(expr: str, old: float, new: float) -> str:
    """``expr`` with every comparison against ``old`` made against ``new``."""

    def swap(match: re.Match[str]) -> str:
        if float(match.group("num")) != old:
            return match.group(0)
        return match.group("head") + _number(new)

    return _THRESHOLD_RE.sub(swap, expr)


def _grid(base: float, factors: Sequence[float]) -> list[float]:
    return sorted({float(_number(base * f)) for f in factors})


def _for_grid(base: float, factors: Sequence[float], step: float) -> list[float]:
    values = {round(base * f / step) * step for f in factors} | {base}
    return sorted(values)


def tune(
    client: RangeQuerier,
    groups: Sequence[RuleGroup],
    incidents: Sequence[Incident],
    start: float,
    end: float,
    *,
    alerts: Sequence[str] = (),
    step: float | None = None,
    grace: float = 600.0,
    threshold_factors: Sequence[float] = DEFAULT_THRESHOLD_FACTORS,
    for_factors: Sequence[float] = DEFAULT_FOR_FACTORS,
) -> list[AlertTuning]:
    """Sweep every alert (or those named in ``alerts``) over the grid; see the module docstring."""
    inliner = Inliner([rule for group in groups for rule in group.recording])
    known = {rule.alert for group in groups for rule in group.alerting}
    unknown = sorted(set(alerts) - known)
    if unknown:
        raise BacktestError(f"--tune-alert: no alerting rule named {', '.join(unknown)} in the rule files")
    out: list[AlertTuning] = []
    for group in groups:
        interval = step or group.interval
        for rule in group.alerting:
            if alerts and rule.alert not in alerts:
                continue
            base = find_threshold(rule.expr)
            thresholds: list[float | None] = list(_grid(base, threshold_factors)) if base else [base]
            fors = _for_grid(rule.for_seconds, for_factors, interval)
            tuning = AlertTuning(rule, base, 0)
            for threshold in thresholds:
                expr = (
                    rule.expr
                    if threshold is None or base is None
                    else with_threshold(rule.expr, base, threshold)
                )
                inlined = inliner.inline(expr, interval)
                timestamps, present = query_presence(client, rule, inlined.expr, start, end, interval)
                for for_seconds in fors:
                    episodes = apply_for_semantics(
                        timestamps, present, for_seconds, rule.keep_firing_for_seconds
                    )
                    result = BacktestResult(start, end, [AlertResult(rule, inlined.expr, interval, episodes)])
                    [entry] = score(result, incidents, grace=grace).alerts
                    tuning.incidents = entry.incidents
                    tuning.settings.append(
                        Setting(
                            threshold,
                            for_seconds,
                            entry.false_positives,
                            entry.recall,
                            entry.median_delay,
                            entry.max_delay,
                        )
                    )
            out.append(tuning)
    return out


def _threshold_text(value: float | None) -> str:
    return "-" if value is None else _number(value)


def _fmt_delay(value: float | None) -> str:
    return "-" if value is None else ("-" if value < 0 else "") + format_duration(abs(value))


def _row(s: Setting, tuning: AlertTuning) -> list[str]:
    marks = []
    if s.threshold == tuning.threshold and s.for_seconds == tuning.rule.for_seconds:
        marks.append("<- today")
    if s == tuning.suggested and "<- today" not in marks:
        marks.append("<- suggested")
    return [
        "-" if s.threshold is None else _number(s.threshold),
        format_duration(s.for_seconds),
        str(s.false_firings),
        "-" if s.recall is None else f"{s.recall:.2f}",
        _fmt_delay(s.median_delay),
        _fmt_delay(s.max_delay),
        " ".join(marks),
    ]


def rule_diff(source: Path, tuning: AlertTuning, setting: Setting) -> str:
    """A unified diff of ``source`` changing the rule's threshold and ``for:`` to ``setting``'s."""
    try:
        lines = source.read_text().splitlines(keepends=True)
    except OSError as exc:
        return f"(cannot read {source}: {exc.strerror or exc})\n"
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if re.match(rf"^\s*-\s*alert:\s*['\"]?{re.escape(tuning.rule.alert)}['\"]?\s*$", line)
        ),
        None,
    )
    if start is None:
        return f"(alert {tuning.rule.alert} not found in {source})\n"
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) <= indent
        ),
        len(lines),
    )
    new = list(lines)
    in_expr = False
    for i in range(start, end):
        line = new[i]
        stripped = line.strip()
        if re.match(r"^for:\s*", stripped):
            new[i] = re.sub(r"for:\s*\S+", f"for: {format_duration(setting.for_seconds)}", line)
            in_expr = False
        elif stripped.startswith("expr:"):
            in_expr = True
        elif re.match(r"^[a-z_]+:(\s|$)", stripped):
            in_expr = False
        if (
            in_expr
            and tuning.threshold is not None
            and setting.threshold is not None
            and setting.threshold != tuning.threshold
        ):
            new[i] = with_threshold(new[i], tuning.threshold, setting.threshold)
    if new == lines:
        return "(no change)\n"
    return "".join(difflib.unified_diff(lines, new, f"a/{source}", f"b/{source}", n=1))


def render_tuning(tunings: Sequence[AlertTuning]) -> str:
    """Per alert: the front, today's setting on or off it, the suggestion and its rule diff."""
    out: list[str] = []
    for tuning in tunings:
        rule = tuning.rule
        kind = "false pages" if rule.labels.get("severity") == "page" else "false firings"
        out.append(
            f"{rule.alert}  ({rule.labels.get('severity', '-')}, "
            f"threshold {'-' if tuning.threshold is None else _number(tuning.threshold)}, "
            f"for {format_duration(rule.for_seconds)}): {tuning.incidents} incident(s) of type "
            f"{rule.labels.get('incident_type', '-')}, {len(tuning.settings)} settings swept"
        )
        if not tuning.incidents:
            out.append("  no labelled incident of this type: recall and delay cannot be judged")
        headers = ["threshold", "for", kind, "recall", "delay p50", "delay max", ""]
        today = tuning.today
        rows = [_row(s, tuning) for s in tuning.front]
        if today not in tuning.front:
            rows.append(_row(today, tuning))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        out.append("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        out.extend(
            "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )
        dominated_by = [s for s in tuning.settings if s.dominates(today)]
        if dominated_by:
            best = min(dominated_by, key=lambda s: s.key())
            out.append(
                f"  today's setting is NOT on the front: threshold {_number(best.threshold or 0)}, "
                f"for {format_duration(best.for_seconds)} is at least as good on every axis"
            )
        else:
            out.append("  today's setting is on the front")
        suggested = tuning.suggested
        if suggested == today:
            out.append("  suggestion: keep today's setting")
        else:
            out.append(
                f"  suggestion: threshold {_threshold_text(suggested.threshold)}, "
                f"for {format_duration(suggested.for_seconds)} ({suggested.false_firings} {kind}, "
                f"recall {suggested.recall if suggested.recall is None else f'{suggested.recall:.2f}'}, "
                f"delay p50 {_fmt_delay(suggested.median_delay)}); check its margin before adopting it:"
            )
            diff = rule_diff(Path(rule.source), tuning, suggested)
            out.extend("    " + line for line in diff.rstrip("\n").splitlines())
        out.append("")
    return "\n".join(out) + "\n"


def _setting_json(s: Setting) -> dict[str, object]:
    return {
        "threshold": s.threshold,
        "for_seconds": s.for_seconds,
        "false_firings": s.false_firings,
        "recall": s.recall,
        "delay_median_seconds": s.median_delay,
        "delay_max_seconds": s.max_delay,
    }


def tuning_json(tunings: Sequence[AlertTuning]) -> list[dict[str, object]]:
    """The sweep as JSON: every setting, the front, today's and the suggested setting per alert."""
    return [
        {
            "alertname": t.rule.alert,
            "severity": t.rule.labels.get("severity"),
            "incident_type": t.rule.labels.get("incident_type"),
            "incidents": t.incidents,
            "threshold": t.threshold,
            "for_seconds": t.rule.for_seconds,
            "today": _setting_json(t.today),
            "suggested": _setting_json(t.suggested),
            "today_on_front": not any(s.dominates(t.today) for s in t.settings),
            "front": [_setting_json(s) for s in t.front],
            "settings": [_setting_json(s) for s in t.settings],
        }
        for t in tunings
    ]
