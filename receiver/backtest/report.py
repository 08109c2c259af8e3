"""Render a backtest (and its score) as a readable text report or as JSON."""

from __future__ import annotations

from typing import Any

from receiver.backtest.engine import BacktestResult, Episode
from receiver.backtest.scoring import AlertScore, Score
from receiver.backtest.times import format_time
from receiver.durations import format_duration

__all__ = ["render_text", "to_json"]


def _labels_text(labels: dict[str, str] | Any, skip: tuple[str, ...] = ("alertname",)) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k not in skip) + "}"


def _episode_json(episode: Episode) -> dict[str, Any]:
    return {
        "labels": dict(episode.labels),
        "pending_at": format_time(episode.active_at),
        "fired_at": None if episode.fired_at is None else format_time(episode.fired_at),
        "resolved_at": None if episode.resolved_at is None else format_time(episode.resolved_at),
    }


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _delay(value: float | None) -> str:
    if value is None:
        return "-"
    return ("-" if value < 0 else "") + format_duration(abs(value))


def _score_json(entry: AlertScore) -> dict[str, Any]:
    return {
        "alertname": entry.alertname,
        "incident_type": entry.incident_type,
        "firing": entry.firing,
        "true_positives": entry.true_positives,
        "false_positives": entry.false_positives,
        "incidents": entry.incidents,
        "detected": entry.detected,
        "false_negatives": entry.false_negatives,
        "precision": entry.precision,
        "recall": entry.recall,
        "delay_median_seconds": entry.median_delay,
        "delay_max_seconds": entry.max_delay,
    }


def to_json(result: BacktestResult, scored: Score | None = None) -> dict[str, Any]:
    """A JSON-ready document: the range, every alert's episodes, and the score when incidents were given."""
    document: dict[str, Any] = {
        "start": format_time(result.start),
        "end": format_time(result.end),
        "alerts": [
            {
                "alertname": a.rule.alert,
                "group": a.rule.group,
                "source": a.rule.source,
                "for_seconds": a.rule.for_seconds,
                "keep_firing_for_seconds": a.rule.keep_firing_for_seconds,
                "step_seconds": a.step,
                "warnings": a.warnings,
                "firing": [_episode_json(e) for e in a.firing],
                "pending_only": [_episode_json(e) for e in a.pending_only],
            }
            for a in result.alerts
        ],
    }
    if scored is not None:
        document["score"] = {
            "grace_seconds": scored.grace,
            "overall": _score_json(scored.overall),
            "pages": None if scored.pages is None else _score_json(scored.pages),
            "by_incident_type": [_score_json(s) for s in scored.by_type],
            "alerts": [_score_json(s) for s in scored.alerts],
            "incidents": [
                {
                    "name": o.incident.name,
                    "model": o.incident.model,
                    "incident_type": o.incident.incident_type,
                    "start": format_time(o.incident.start),
                    "end": format_time(o.incident.end),
                    "detected_by": list(o.detected_by),
                    "delay_seconds": o.delay,
                }
                for o in scored.incidents
            ],
            "false_positives": [
                {
                    "alertname": i.alertname,
                    "labels": i.labels,
                    "start": format_time(i.start),
                    "end": format_time(i.end),
                }
                for i in scored.false_positive_intervals
            ],
        }
    return document


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return out


def _score_rows(entries: list[AlertScore]) -> list[list[str]]:
    return [
        [
            e.alertname,
            e.incident_type or "-",
            str(e.firing),
            str(e.true_positives),
            str(e.false_positives),
            f"{e.detected}/{e.incidents}",
            _ratio(e.precision),
            _ratio(e.recall),
            _delay(e.median_delay),
            _delay(e.max_delay),
        ]
        for e in entries
    ]


def render_text(result: BacktestResult, scored: Score | None = None) -> str:
    """A plain-text report: firing and pending-only intervals per alert, then the score tables."""
    lines = [f"Backtest {format_time(result.start)} .. {format_time(result.end)}", ""]
    for alert in result.alerts:
        rule = alert.rule
        lines.append(
            f"{rule.alert}  (group {rule.group}, for {format_duration(rule.for_seconds)}, "
            f"step {format_duration(alert.step)}): {len(alert.firing)} firing, "
            f"{len(alert.pending_only)} pending only"
        )
        for warning in alert.warnings:
            lines.append(f"  warning: {warning}")
        for e in alert.firing:
            lines.append(
                f"  FIRING   {format_time(e.fired_at)} -> {format_time(e.resolved_at)}  "
                f"{_labels_text(dict(e.labels))}"
            )
        for e in alert.pending_only:
            lines.append(
                f"  pending  {format_time(e.active_at)} -> {format_time(e.resolved_at)}  "
                f"{_labels_text(dict(e.labels))}"
            )
    if scored is not None:
        headers = [
            "alert",
            "incident_type",
            "firing",
            "TP",
            "FP",
            "detected",
            "precision",
            "recall",
            "delay p50",
            "delay max",
        ]
        lines += ["", f"Score (grace {format_duration(scored.grace)} after each incident)", ""]
        extra = [scored.pages] if scored.pages is not None else []
        lines += _table(headers, _score_rows([*scored.alerts, scored.overall, *extra]))
        lines += ["", "By incident type", ""]
        type_rows = [row[:1] + row[2:] for row in _score_rows(scored.by_type)]
        lines += _table(["incident_type", *headers[2:]], type_rows)
        missed = [o for o in scored.incidents if not o.detected_by]
        if missed:
            lines += ["", "Missed incidents"]
            lines += [
                f"  {o.incident.name or '-'} {o.incident.incident_type} model={o.incident.model} "
                f"{format_time(o.incident.start)} .. {format_time(o.incident.end)}"
                for o in missed
            ]
        if scored.false_positive_intervals:
            lines += ["", "False positives"]
            lines += [
                f"  {i.alertname} {format_time(i.start)} -> {format_time(i.end)} {_labels_text(i.labels)}"
                for i in scored.false_positive_intervals
            ]
    return "\n".join(lines) + "\n"
