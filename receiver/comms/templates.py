"""Wording of status updates: default templates per event and audience, runbook overrides, safe fallback.

Templates are rendered by :func:`receiver.templating.render` (sandboxed, ``StrictUndefined``). The context
comes from :meth:`StatusUpdate.to_context`; alert labels and annotations are values in it, so a label
holding ``{{ 7*7 }}`` prints exactly that. Nothing is HTML-escaped here: escaping for a channel's markup
is the channel's job (:mod:`receiver.comms.channels`).

Runbook overrides (``comms.templates``) map an event to a template string (all audiences) or to
``{oncall: ..., stakeholder: ...}``. A template that fails — syntax, undefined name, sandbox violation,
or an empty result — never blanks the message: :func:`render_message` returns a plain fallback with the
essential facts and the error text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from receiver.comms.message import AUDIENCES, EVENTS, RenderedMessage, StatusUpdate
from receiver.errors import TemplateError
from receiver.templating import compile_template, render

__all__ = [
    "DEFAULT_TEMPLATES",
    "default_template",
    "fallback_text",
    "message_title",
    "render_message",
    "resolve_template",
    "validate_overrides",
]

_HEADLINES = {
    "opened": "Investigating",
    "update": "Update",
    "contained": "Contained",
    "escalated": "Escalated",
    "resolved": "Resolved",
}
_PLAIN_SEVERITY = {"SEV1": "Major incident", "SEV2": "Incident", "SEV3": "Minor incident"}
_PLAIN_ACTIONS = {
    "rollback": "switched the model back to its last known good version",
    "traffic_split": "moved part of the traffic to the last known good version of the model",
    "fallback": "switched to a safe fallback (rules and defaults) instead of the model",
    "guardrail": "tightened the safety filters on the model's output",
    "page": "called in the on-call engineers",
}

_ONCALL_INTRO = {
    "opened": "{{ severity }} opened: {{ title }}\n"
    "Investigating. Runbook responses are running; evidence below was queried at open.",
    "update": "{{ severity }} update #{{ sequence }}: {{ title }} (state: {{ state }})",
    "contained": "{{ severity }} contained: {{ title }}\nThe verify condition held; traffic is stable. "
    "Recovery (traffic back, fallback off) is a separate, explicit step.",
    "escalated": "{{ severity }} ESCALATED: {{ title }}\n"
    "Needs a human{% if owners.get('escalation') %}: {{ owners.get('escalation') }}{% endif %}.",
    "resolved": "{{ severity }} resolved: {{ title }}\nAlerts have resolved. Containment stays in place "
    "until recovery is run; write the review from the timeline.",
}

_ONCALL_BODY = """
{% if summary %}{{ summary }}
{% endif %}Incident {{ incident_id }} · state {{ state }}
Model: {{ model.name }} · active {{ model.active or "unknown" }} · last known good \
{{ model.last_known_good or "none (no other healthy version to fall back to)" }}\
{% if model.changed %} · changed: {{ model.changed }}{% endif %}
Impact: {{ impact or "being assessed" }}
Evidence:
{% for e in evidence %}- {{ e.name }}: {{ e.display }}{% if e.query %}  [{{ e.query }}]{% endif %}
{% else %}- none captured
{% endfor %}Actions:
{% for a in actions %}- {{ a.kind }}: {{ a.status }}{% if a.detail %} ({{ a.detail }}){% endif %}
{% else %}- none
{% endfor %}Owners: {% for role, who in owners | dictsort %}{{ role }}={{ who }}{% if not loop.last %}, \
{% endif %}{% else %}unassigned{% endfor %}
Next update: {{ next_update }}
{% for label, url in link_items %}{{ label }}: {{ url }}
{% endfor %}"""

_STAKEHOLDER_INTRO = {
    "opened": "{{ plain_severity }}: we are investigating a problem with {{ model.name }}.",
    "update": "{{ plain_severity }} update: we are still working on the problem with {{ model.name }}.",
    "contained": "{{ plain_severity }}: the problem with {{ model.name }} is contained. "
    "We are watching to make sure it stays that way.",
    "escalated": "{{ plain_severity }}: we have brought in more people to fix the problem with "
    "{{ model.name }}.",
    "resolved": "{{ plain_severity }}: the problem with {{ model.name }} is resolved.",
}

_STAKEHOLDER_BODY = """
What is affected: {{ impact or "we are still assessing the impact." }}
What we did: {% for a in plain_actions %}{{ a }}{% if not loop.last %}; {% endif %}\
{% else %}we are looking into it{% endfor %}.
Next update: {{ next_update }}.
{% if owners.get('comms') or owners.get('incident_commander') %}\
Contact: {{ owners.get('comms') or owners.get('incident_commander') }}.{% endif %}
{% if links.incident %}Details: {{ links.incident }}{% endif %}"""


def _build_defaults() -> dict[str, dict[str, str]]:
    return {
        event: {
            "oncall": _ONCALL_INTRO[event] + _ONCALL_BODY,
            "stakeholder": _STAKEHOLDER_INTRO[event] + _STAKEHOLDER_BODY,
        }
        for event in EVENTS
    }


#: ``DEFAULT_TEMPLATES[event][audience]`` — the built-in wording.
DEFAULT_TEMPLATES: Mapping[str, Mapping[str, str]] = _build_defaults()


def default_template(event: str, audience: str) -> str:
    _check(event, audience)
    return DEFAULT_TEMPLATES[event][audience]


def _check(event: str, audience: str) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}; expected one of {', '.join(AUDIENCES)}")


def resolve_template(event: str, audience: str, overrides: Mapping[str, Any] | None) -> tuple[str, str]:
    """``(source, origin)``: the runbook override for this event/audience if any, else the default."""
    _check(event, audience)
    override = (overrides or {}).get(event)
    if isinstance(override, str):
        return override, f"runbook template {event!r}"
    if isinstance(override, Mapping) and isinstance(override.get(audience), str):
        return str(override[audience]), f"runbook template {event}.{audience}"
    return DEFAULT_TEMPLATES[event][audience], f"default template {event}.{audience}"


def validate_overrides(overrides: Any) -> list[str]:
    """Problems with a runbook's ``comms.templates`` (for ``receiver lint``); empty when fine."""
    if overrides is None:
        return []
    if not isinstance(overrides, Mapping):
        return ["comms.templates must be a mapping of event to template"]
    problems: list[str] = []
    for event, value in overrides.items():
        where = f"comms.templates.{event}"
        if event not in EVENTS:
            problems.append(f"{where}: unknown event; expected one of {', '.join(EVENTS)}")
            continue
        sources: list[tuple[str, Any]]
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(AUDIENCES))
            if unknown:
                problems.append(
                    f"{where}: unknown audience(s) {', '.join(map(str, unknown))}; "
                    f"expected {', '.join(AUDIENCES)}"
                )
            sources = [(f"{where}.{a}", value[a]) for a in AUDIENCES if a in value]
        else:
            sources = [(where, value)]
        for name, source in sources:
            if not isinstance(source, str):
                problems.append(f"{name}: must be a string")
                continue
            try:
                compile_template(source)
            except TemplateError as exc:
                problems.append(f"{name}: {exc.message}")
    return problems


def message_title(update: StatusUpdate, audience: str = "oncall") -> str:
    """A one-line title built without templates (so it always exists)."""
    if audience == "stakeholder":
        severity = _PLAIN_SEVERITY.get(update.severity, "Incident")
        return f"{severity} · {_HEADLINES[update.event]}: {update.model.name}"
    return f"[{update.severity}] {_HEADLINES[update.event]}: {update.title}"


def _plain_actions(update: StatusUpdate) -> list[str]:
    phrases = []
    for action in update.actions:
        phrase = _PLAIN_ACTIONS.get(action.kind)
        if phrase is None:
            continue
        if action.status in ("dry_run", "skipped"):
            continue
        if action.kind == "guardrail" and "risky tools blocked" in action.detail:
            phrase += " and blocked its risky tools (web browsing, code execution, email, file writes)"
        if action.status in ("failed", "refused", "interrupted"):
            phrase = f"attempted: {phrase} (this did not work yet)"
        elif action.status == "unknown":
            phrase = f"attempted: {phrase} (no answer came: it may or may not have happened; being checked)"
        phrases.append(phrase)
    return phrases


def _context(update: StatusUpdate) -> dict[str, Any]:
    context = update.to_context()
    context["plain_severity"] = _PLAIN_SEVERITY.get(update.severity, "Incident")
    context["plain_actions"] = _plain_actions(update)
    context["headline"] = _HEADLINES[update.event]
    context["link_items"] = [list(item) for item in update.links.items()]
    return context


def fallback_text(update: StatusUpdate, error: str) -> str:
    """The essential facts, assembled without Jinja, plus the template error."""
    model = update.model
    lines = [
        message_title(update),
        f"(message template failed: {error})",
        f"Incident {update.incident_id} · {update.severity} · state {update.state} · event {update.event}",
        f"Model: {model.name} · active {model.active or 'unknown'} · last known good "
        f"{model.last_known_good or 'none (no other healthy version to fall back to)'}"
        + (f" · changed: {model.changed}" if model.changed else ""),
        f"Impact: {update.impact or 'being assessed'}",
    ]
    if update.summary:
        lines.append(update.summary)
    for snap in update.evidence:
        lines.append(f"Evidence {snap.name}: {snap.display()}")
    for action in update.actions:
        lines.append(
            f"Action {action.kind}: {action.status}" + (f" ({action.detail})" if action.detail else "")
        )
    if update.owners:
        lines.append("Owners: " + ", ".join(f"{k}={v}" for k, v in sorted(update.owners.items())))
    lines.append(f"Next update: {update.next_update_text}")
    lines.extend(f"{label}: {url}" for label, url in update.links.items())
    return "\n".join(lines)


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def render_message(
    update: StatusUpdate, audience: str, overrides: Mapping[str, Any] | None = None
) -> RenderedMessage:
    """Render ``update`` for ``audience``; on any template failure return the plain fallback."""
    source, origin = resolve_template(update.event, audience, overrides)
    title = message_title(update, audience)
    try:
        text = _tidy(render(source, _context(update)))
        if not text:
            raise TemplateError("template rendered an empty message")
    except TemplateError as exc:
        error = f"{origin}: {exc.message}"
        return RenderedMessage(
            audience, title, fallback_text(update, error), update, fallback=True, error=error
        )
    return RenderedMessage(audience, title, text, update)
