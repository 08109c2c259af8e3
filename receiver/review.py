"""Post-incident review: a blameless Markdown draft built only from the incident's timeline.

Nothing here is invented: every time, action and message comes from the store. The sections a human must
write (root cause, what went well, action items) are left blank on purpose.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from receiver.store.base import IncidentDetail, TimelineEntry

__all__ = ["render_review"]


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "n/a"
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


_INLINE_MARKUP = re.compile(r"([\\`*_\[\]<>|~&#!])")
_BACKTICKS = re.compile(r"`+")


def _md(text: Any) -> str:
    """Inline Markdown text shown literally: one line, every character with inline meaning escaped
    (backticks, emphasis, links, HTML, table pipes), since titles and labels are data."""
    line = " ".join(str(text if text is not None else "").split())
    return _INLINE_MARKUP.sub(r"\\\1", line)


def _code(text: Any) -> str:
    """An inline code span holding ``text`` literally: the fence is longer than any backtick run in it."""
    line = " ".join(str(text if text is not None else "").split())
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(line)), default=0) + 1)
    pad = " " if line.startswith("`") or line.endswith("`") or fence != "`" else ""
    return f"{fence}{pad}{line}{pad}{fence}"


def _cell(text: Any) -> str:
    """Markdown table cell: one line, markup escaped (label values are data, shown literally)."""
    return _md(text).strip()


def _first(timeline: list[TimelineEntry], *kinds: str) -> TimelineEntry | None:
    return next((e for e in timeline if e.kind in kinds), None)


def render_review(detail: IncidentDetail) -> str:
    incident, timeline = detail.incident, detail.timeline
    opened = _parse(incident.opened_at)
    alert_starts = [_parse(a.starts_at) for a in detail.alerts if a.starts_at]
    first_alert = min((s for s in alert_starts if s is not None), default=None)
    contained_entry = _first(timeline, "contained")
    first_action = next(
        (e for e in timeline if e.kind == "action" and e.data.get("event") in ("succeeded", "dry_run")), None
    )
    resolved = _parse(incident.resolved_at)
    contained = _parse(contained_entry.at) if contained_entry else None
    acted = _parse(first_action.at) if first_action else None

    lines: list[str] = [
        f"# Post-incident review: incident {incident.id} — {_md(incident.title)}",
        "",
        "_Blameless review drafted from the incident timeline. Facts below are recorded; the sections at "
        "the end are for the team to write._",
        "",
        "## Summary",
        "",
        f"- **Runbook:** {_code(incident.runbook_id)}",
        f"- **Model:** {_code(incident.model or 'n/a')}",
        f"- **Final severity:** {_md(incident.severity)}",
        f"- **State:** {_md(incident.state)}",
        f"- **Alert started:** {first_alert.isoformat() if first_alert else 'n/a'}",
        f"- **Opened:** {incident.opened_at}",
        f"- **Contained:** {contained_entry.at if contained_entry else 'not verified as contained'}",
        f"- **Resolved:** {incident.resolved_at or 'not resolved'}",
        "",
        "## Key times",
        "",
        "| measure | value |",
        "|---|---|",
        f"| time to detect (alert start → incident opened) | {_span(first_alert, opened)} |",
        f"| time to first containment action | {_span(opened, acted)} |",
        f"| time to contain (opened → verified) | {_span(opened, contained)} |",
        f"| time to resolve (opened → resolved) | {_span(opened, resolved)} |",
        "",
        "## Severity history",
        "",
    ]
    severity = [e for e in timeline if e.kind == "severity"]
    lines += [f"- {e.at} — {_md(e.message)}" for e in severity] or ["- no severity changes recorded"]

    lines += ["", "## Alerts", "", "| alert | status | started | ended | labels |", "|---|---|---|---|---|"]
    for alert in detail.alerts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        lines.append(
            f"| {_cell(alert.alertname)} | {_cell(alert.status)} | {_cell(alert.starts_at)} | "
            f"{_cell(alert.ends_at)} | {_cell(labels)} |"
        )

    lines += ["", "## Model versions", ""]
    versions = [e for e in timeline if e.kind == "action" and e.data.get("result")]
    version_lines = []
    for entry in versions:
        result = entry.data.get("result") or {}
        interesting = {
            k: v for k, v in result.items() if any(w in k for w in ("version", "traffic", "mode", "level"))
        }
        if interesting:
            details = ", ".join(f"{k}={v}" for k, v in sorted(interesting.items()))
            version_lines.append(f"- {entry.at} — {entry.data.get('action')}: {_cell(details)}")
    lines += version_lines or ["- no model version changes recorded"]

    lines += ["", "## Evidence snapshots", ""]
    evidence = [e for e in timeline if e.kind == "evidence"]
    for entry in evidence:
        lines.append(f"At {entry.at} ({_md(entry.data.get('moment', ''))}):")
        lines.append("")
        for snap in entry.data.get("snapshots", []):
            shown = snap.get("error") or snap.get("value")
            if shown is None and snap.get("samples"):
                shown = "; ".join(str(s.get("value")) for s in snap["samples"])
            lines.append(f"- {_cell(snap.get('name'))}: {_cell(shown)} — {_code(snap.get('query'))}")
        lines.append("")
    if not evidence:
        lines += ["- no evidence captured", ""]

    lines += [
        "## Actions",
        "",
        "| time | phase | action | step | result | detail |",
        "|---|---|---|---|---|---|",
    ]
    actions = [e for e in timeline if e.kind == "action"]
    for entry in actions:
        data = entry.data
        lines.append(
            f"| {entry.at} | {_cell(data.get('phase'))} | {_cell(data.get('action'))} | "
            f"{_cell(data.get('step_id'))} | {_cell(data.get('event'))} | "
            f"{_cell(data.get('summary') or data.get('error') or '')} |"
        )
    if not actions:
        lines.append("| | | | | no actions ran | |")

    lines += ["", "## Messages sent", ""]
    messages = [e for e in timeline if e.kind in ("message", "message_error")]
    lines += [f"- {e.at} — {_cell(e.message)}" for e in messages] or ["- no messages"]

    lines += ["", "## Timeline", ""]
    lines += [f"- {e.at} {_code(e.kind)} {_cell(e.message)}" for e in timeline]

    lines += [
        "",
        "## Root cause",
        "",
        "_To be written by the team: what changed, why the model degraded, why it was not caught earlier._",
        "",
        "## What went well / what went badly",
        "",
        "- ",
        "",
        "## Action items",
        "",
        "| action | owner | due | ticket |",
        "|---|---|---|---|",
        "|  |  |  |  |",
        "",
    ]
    return "\n".join(lines)
