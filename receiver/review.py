"""Post-incident review: a blameless Markdown draft built only from the incident's timeline.

Nothing here is invented: every time, action and message comes from the store. The sections a human must
write (root cause, what went well, action items) are left blank on purpose.

With pictures (the console passes them): a chart of each key query over the incident window, embedded as
an SVG ``data:`` image, and the facts the data already answers (:func:`review_facts`): detection delay
against the rule's ``for:``, time to contain against the runbook's verify timeout, whether escalation
fired, flapping alerts, approvals and how long they waited. A fact the data cannot answer says so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from receiver.runbooks import parse_duration
from receiver.store.base import IncidentDetail, TimelineEntry

__all__ = ["ReviewChart", "render_review", "review_facts"]


@dataclass(frozen=True)
class ReviewChart:
    title: str
    query: str
    svg: str  # a stand-alone <svg> (presentation attributes only)


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


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    seconds = abs(round(value))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return sign + (f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s")


def _delta(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def review_facts(
    detail: IncidentDetail,
    runbook_document: Mapping[str, Any] | None = None,
    *,
    rule_for: Mapping[str, float] | None = None,
    approvals: Sequence[Any] = (),
) -> list[tuple[str, str]]:
    """(question, answer) pairs the recorded data answers. ``rule_for``: alert name → the rule's ``for:``
    in seconds (from Prometheus's rules API); ``approvals``: the incident's approval gates."""
    incident, timeline = detail.incident, detail.timeline
    doc = runbook_document or {}
    opened = _parse(incident.opened_at)
    facts: list[tuple[str, str]] = []
    for alert in detail.alerts:
        started = _parse(alert.starts_at)
        delay = _delta(started, opened)
        held = (rule_for or {}).get(alert.alertname)
        if held is None:
            rule = "the rule's for: is unknown (Prometheus did not list the rule)"
        else:
            total = None if delay is None else delay + held
            rule = (
                f"the rule waits for: {_seconds(held)} first, so about {_seconds(total)} from the "
                "condition becoming true"
            )
        answer = f"{_seconds(delay)} from firing to the incident; {rule}"
        facts.append((f"detection delay of {alert.alertname}", answer))
    contained = _parse(incident.contained_at)
    target_text = (doc.get("verify") or {}).get("timeout")
    target = parse_duration(str(target_text)) if target_text else None
    took = _delta(opened, contained)
    if took is None:
        answer = "not verified as contained"
    elif target is None:
        answer = f"{_seconds(took)} (the runbook sets no verify timeout)"
    else:
        verdict = "within" if took <= target else "over"
        answer = f"{_seconds(took)}, {verdict} the runbook's target of {_seconds(target)} (verify.timeout)"
    facts.append(("time to contain", answer))
    escalations = [e for e in timeline if e.kind == "escalated"]
    if escalations:
        facts.append(("escalation", f"fired at {escalations[0].at}: {escalations[0].message}"))
    else:
        after = (doc.get("escalate") or {}).get("after")
        facts.append(("escalation", "did not fire" + (f" (escalate.after {after})" if after else "")))
    firing = Counter(
        str(e.data["fingerprint"]) for e in timeline if e.kind == "alert_firing" and e.data.get("fingerprint")
    )
    names = {a.fingerprint: a.alertname for a in detail.alerts}
    flapping = [f"{names.get(fp, fp)} fired {n} times" for fp, n in sorted(firing.items()) if n > 1]
    facts.append(("flapping alerts", "; ".join(flapping) if flapping else "none (each alert fired once)"))
    if not approvals:
        facts.append(("approvals", "no approval gates"))
    for approval in approvals:
        asked, decided = _parse(approval.requested_at), _parse(approval.decided_at)
        waited = _seconds(_delta(asked, decided)) if decided else "still waiting"
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        facts.append(
            (f"approval of {approval.kind} [{approval.step_id}]", f"{approval.state}{who}, waited {waited}")
        )
    return facts


def render_review(
    detail: IncidentDetail,
    *,
    facts: Sequence[tuple[str, str]] | None = None,
    charts: Sequence[ReviewChart] = (),
) -> str:
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
    ]
    if facts is not None:
        lines += ["## What the data answers", "", "| question | answer |", "|---|---|"]
        lines += [f"| {_cell(q)} | {_cell(a)} |" for q, a in facts]
        lines.append("")
    if charts:
        from receiver.console.charts import svg_data_uri

        lines += ["## Charts", ""]
        for chart in charts:
            alt = _cell(chart.title).replace("[", "(").replace("]", ")")
            lines += [f"![{alt}]({svg_data_uri(chart.svg)})", "", f"`{_cell(chart.query)}`", ""]
    lines += ["## Severity history", ""]
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
