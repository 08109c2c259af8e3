"""Runbooks: schema-validated YAML with line-numbered problems, Alertmanager matchers, precedence and
severity tables.

Precedence when several runbooks match an alert: higher ``priority``, then more matchers, then id
alphabetically; no match -> the built-in ``unmatched`` runbook (:data:`UNMATCHED_RUNBOOK_ID`).
"""

from __future__ import annotations

from receiver.runbooks.durations import parse_duration
from receiver.runbooks.loader import default_schema_path, lint_runbooks, load_runbooks, load_schema
from receiver.runbooks.matchers import Matcher, MatcherError, parse_matcher
from receiver.runbooks.model import UNMATCHED_RUNBOOK_ID, Runbook, RunbookSet, unmatched_runbook
from receiver.runbooks.problems import Problem
from receiver.runbooks.severity import (
    LEVELS,
    SeverityContext,
    SeverityDecision,
    SeverityRowError,
    more_severe,
    parse_value,
)

__all__ = [
    "LEVELS",
    "UNMATCHED_RUNBOOK_ID",
    "Matcher",
    "MatcherError",
    "Problem",
    "Runbook",
    "RunbookSet",
    "SeverityContext",
    "SeverityDecision",
    "SeverityRowError",
    "default_schema_path",
    "lint_runbooks",
    "load_runbooks",
    "load_schema",
    "more_severe",
    "parse_duration",
    "parse_matcher",
    "parse_value",
    "unmatched_runbook",
]
