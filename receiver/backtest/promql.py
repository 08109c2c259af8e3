"""Inline recording rules into the expressions that use them, so an alert can be replayed on raw history.

History written without the rules running (a backfill, another Prometheus) has no recorded series, so
querying ``model:psi:max > 0.2`` would find nothing. Instead every reference to a recorded name is replaced
by the recording rule's own expression, which is exact because a recorded sample at time *t* is by
definition that expression evaluated at *t*:

* ``name``                 → ``(expr)``; static ``labels:`` of the rule are added with ``label_replace``;
  several rules recording the same name (e.g. one per window label) become ``(e1 or e2)``.
* ``name{l="v", m=~"r"}``  → the inlined vector filtered per matcher: ``=``/``!=`` with
  ``and``/``unless on(l)`` against ``label_replace(vector(1), "l", "v", "", "")``; ``=~``/``!~`` by marking
  matching rows with a temporary label via ``label_replace`` and keeping/dropping the marked rows.
* ``name[5m]`` / ``name{..}[5m]`` → a subquery ``(...)[5m:<group interval>]``, which samples the inlined
  expression at the rule group's interval exactly as the recorded series would have been sampled
  (up to the phase of the group's evaluation offset).
* a reference followed by ``offset`` or ``@`` is left untouched (a warning says so): it is read from the
  TSDB, where it exists only if a Prometheus ran the rules over that period.

The scanner understands string literals, comments, function calls and grouping clauses (``by``,
``without``, ``on``, ``ignoring``, ``group_left``, ``group_right``), so label names are never rewritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from receiver.backtest.rules import RecordingRule
from receiver.durations import format_duration
from receiver.errors import BacktestError
from receiver.matchers import LABEL_NAME_PATTERN, OPERATORS

__all__ = ["InlineResult", "Inliner"]

_IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER_RE = re.compile(r"[0-9.][0-9a-zA-Z_.]*")
# label names and operators from the one matcher grammar; the values are PromQL string literals (which,
# unlike Alertmanager matchers, may also be single-quoted or backticked) and are re-emitted as written
_MATCHER_RE = re.compile(
    rf"""\s*({LABEL_NAME_PATTERN})\s*({"|".join(OPERATORS)})\s*"""
    r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(,|$)""",
    re.DOTALL,
)
_GROUPING_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_MARK = "__backtest_match"
_MAX_DEPTH = 20


@dataclass
class InlineResult:
    expr: str
    warnings: list[str] = field(default_factory=list)


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal starting at ``start``."""
    quote = text[start]
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            return index + 1
        index += 1
    raise BacktestError(f"unterminated string literal in expression: {text!r}")


def _bracket_end(text: str, start: int, open_char: str, close_char: str) -> int:
    """Index just past the bracket matching ``text[start]``, skipping string literals."""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char in "\"'`":
            index = _string_end(text, index)
            continue
        if char == open_char:
            depth += 1
        elif char == close_char:
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise BacktestError(f"unbalanced {open_char!r} in expression: {text!r}")


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _literal(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _parse_matchers(body: str, expr: str) -> list[tuple[str, str, str]]:
    matchers = []
    index = 0
    body = body.strip()
    while index < len(body):
        match = _MATCHER_RE.match(body, index)
        if match is None:
            raise BacktestError(f"cannot parse label matchers {{{body}}} in expression: {expr!r}")
        matchers.append((match.group(1), match.group(2), match.group(3)))
        index = match.end()
    return matchers


def _filter(vector: str, label: str, op: str, literal: str) -> str:
    one = f'label_replace(vector(1), "{label}", {literal}, "", "")'
    if op == "=":
        return f"({vector} and on({label}) {one})"
    if op == "!=":
        return f"({vector} unless on({label}) {one})"
    marked = f'label_replace({vector}, "{_MARK}", "1", "{label}", {literal})'
    mark_one = f'label_replace(vector(1), "{_MARK}", "1", "", "")'
    if op == "=~":
        return f'label_replace(({marked} and on({_MARK}) {mark_one}), "{_MARK}", "", "", "")'
    return f"({marked} unless on({_MARK}) {mark_one})"


class Inliner:
    """Rewrites expressions so that no recorded name needs to exist in the TSDB (see module docstring)."""

    def __init__(self, recording_rules: Sequence[RecordingRule]) -> None:
        self._rules: dict[str, list[RecordingRule]] = {}
        for rule in recording_rules:
            self._rules.setdefault(rule.record, []).append(rule)

    @property
    def recorded_names(self) -> frozenset[str]:
        return frozenset(self._rules)

    def inline(self, expr: str, interval: float) -> InlineResult:
        """``expr`` with every recorded name replaced; ``interval`` is the subquery resolution."""
        warnings: list[str] = []
        rewritten = self._rewrite(expr, interval, warnings, ())
        return InlineResult(rewritten, warnings)

    def _definition(self, name: str, interval: float, warnings: list[str], stack: tuple[str, ...]) -> str:
        if name in stack:
            cycle = " -> ".join((*stack, name))
            raise BacktestError(f"recording rules reference each other in a cycle: {cycle}")
        if len(stack) > _MAX_DEPTH:
            raise BacktestError(f"recording rules nest deeper than {_MAX_DEPTH} levels at {name!r}")
        parts = []
        for rule in self._rules[name]:
            body = "(" + self._rewrite(rule.expr, interval, warnings, (*stack, name)) + ")"
            for key, value in sorted(rule.labels.items()):
                body = f'label_replace({body}, "{key}", {_literal(value)}, "", "")'
            parts.append(body)
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    def _rewrite(self, expr: str, interval: float, warnings: list[str], stack: tuple[str, ...]) -> str:
        out: list[str] = []
        index = 0
        text = expr
        while index < len(text):
            char = text[index]
            if char in "\"'`":
                end = _string_end(text, index)
                out.append(text[index:end])
                index = end
            elif char == "#":
                end = text.find("\n", index)
                index = len(text) if end < 0 else end
            elif char == "{":
                end = _bracket_end(text, index, "{", "}")
                out.append(text[index:end])
                index = end
            elif char == "[":
                end = _bracket_end(text, index, "[", "]")
                out.append(text[index:end])
                index = end
            elif char.isdigit() or (char == "." and index + 1 < len(text) and text[index + 1].isdigit()):
                match = _NUMBER_RE.match(text, index)
                assert match is not None
                out.append(match.group(0))
                index = match.end()
            elif _IDENT_RE.match(text, index):
                index = self._identifier(text, index, interval, warnings, stack, out)
            else:
                out.append(char)
                index += 1
        return "".join(out)

    def _identifier(
        self,
        text: str,
        index: int,
        interval: float,
        warnings: list[str],
        stack: tuple[str, ...],
        out: list[str],
    ) -> int:
        match = _IDENT_RE.match(text, index)
        assert match is not None
        name = match.group(0)
        end = match.end()
        after = _skip_space(text, end)
        next_char = text[after] if after < len(text) else ""
        if name in _GROUPING_KEYWORDS and next_char == "(":
            close = _bracket_end(text, after, "(", ")")
            out.append(text[index:close])
            return close
        if next_char == "(" or name not in self._rules:
            out.append(name)
            return end
        # A selector of a recorded name: NAME [{matchers}] [[range]] [offset ...|@ ...]
        cursor = end
        matchers: list[tuple[str, str, str]] = []
        if next_char == "{":
            close = _bracket_end(text, after, "{", "}")
            matchers = _parse_matchers(text[after + 1 : close - 1], text)
            cursor = close
        range_text = ""
        probe = _skip_space(text, cursor)
        if probe < len(text) and text[probe] == "[":
            close = _bracket_end(text, probe, "[", "]")
            range_text = text[probe + 1 : close - 1].strip()
            cursor = close
        probe = _skip_space(text, cursor)
        if text.startswith("@", probe) or re.match(r"offset\b", text[probe:]):
            warnings.append(f"{name!r} is used with offset/@ and is read from the TSDB as recorded")
            out.append(text[index:cursor])
            return cursor
        vector = self._definition(name, interval, warnings, stack)
        for label, op, literal in matchers:
            if label == "__name__":
                continue
            vector = _filter(vector, label, op, literal)
        if range_text:
            resolution = "" if ":" in range_text else ":" + format_duration(interval)
            vector = f"({vector})[{range_text}{resolution}]"
        out.append(vector)
        return cursor
