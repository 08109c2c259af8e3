"""The one Alertmanager matcher grammar: ``name="value"``, ``name!="value"``, ``name=~"re"``, ``name!~"re"``.

Runbook ``match:`` lists, the ``silence`` action and the backtest all parse matchers here, so a matcher
means one thing everywhere, and the same thing as in Alertmanager. The accepted syntax is the part on which
Alertmanager 0.25's classic parser and 0.27+'s UTF-8 parser agree; anything either would read differently
is refused with a message saying how to write it:

* label names are ``[a-zA-Z_][a-zA-Z0-9_]*`` (no ``:``: the silences API refuses such names);
* a value is double-quoted, with the escapes ``\\"``, ``\\\\`` and ``\\n`` only (``"v\\d"`` is read as
  ``v\\d`` by 0.25 and refused by 0.27+: write ``"v\\\\d"``), or unquoted when it holds none of
  whitespace and ``{}!=~,\\"'`` and backtick; single quotes do not quote (``model='x'`` is refused rather
  than matching the literal ``'x'`` as 0.25 would);
* regexes are fully anchored (``^(?:re)$``) and ``.`` does not match a newline, as in Go;
* an absent label has the empty value, so ``team=""`` and ``team!~".+"`` match an alert without ``team``.

:func:`format_matcher` (``str(matcher)``) prints the canonical form, which parses back to the same matcher;
:meth:`Matcher.to_api` gives the JSON object of Alertmanager's v2 silences API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

__all__ = [
    "LABEL_NAME_PATTERN",
    "OPERATORS",
    "MatchOp",
    "Matcher",
    "MatcherError",
    "format_matcher",
    "make_matcher",
    "parse_matcher",
]

MatchOp = Literal["=", "!=", "=~", "!~"]
#: the operators, longest first (the order a scanner must try them in)
OPERATORS: tuple[MatchOp, ...] = ("=~", "!~", "!=", "=")
#: a label name Alertmanager and Prometheus accept
LABEL_NAME_PATTERN = r"[a-zA-Z_][a-zA-Z0-9_]*"

_LABEL_NAME_RE = re.compile(LABEL_NAME_PATTERN)
_NAME_TOKEN_RE = re.compile(r"\s*([^\s=!~]*)\s*(=~|!~|!=|=)?\s*", re.DOTALL)
_RESERVED = frozenset(" \t\r\n\v\f{}!=~,\\\"'`")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class MatcherError(ValueError):
    """A matcher string that is not valid matcher syntax (the message says why and how to write it)."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @property
    def is_regex(self) -> bool:
        return self.op in ("=~", "!~")

    @property
    def is_negative(self) -> bool:
        return self.op in ("!=", "!~")

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        hit = self._regex.fullmatch(actual) is not None if self._regex is not None else actual == self.value
        return hit != self.is_negative

    def with_value(self, value: str) -> Matcher:
        """The same name and operator with another value (e.g. a rendered template); regexes re-checked."""
        return make_matcher(self.name, self.op, value)

    def to_api(self) -> dict[str, Any]:
        """This matcher as Alertmanager's v2 API spells it (``POST /api/v2/silences``)."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": not self.is_negative,
        }

    def __str__(self) -> str:
        return format_matcher(self)


def format_matcher(matcher: Matcher) -> str:
    """The canonical text, always double-quoted: ``parse_matcher(format_matcher(m)) == m``."""
    escaped = matcher.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{matcher.name}{matcher.op}"{escaped}"'


def make_matcher(name: str, op: str, value: str, text: str | None = None) -> Matcher:
    """A matcher from its parts, checked as :func:`parse_matcher` checks them."""
    shown = text if text is not None else f"{name}{op}{value!r}"
    if op not in OPERATORS:
        raise MatcherError(f"{shown!r}: unknown operator {op!r}; expected one of =, !=, =~, !~")
    _check_name(name, shown)
    regex: re.Pattern[str] | None = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(f"(?:{value})")
        except re.error as exc:
            raise MatcherError(f"{shown!r}: invalid regular expression {value!r}: {exc}") from exc
    return Matcher(name, cast(MatchOp, op), value, regex)


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher; raises :class:`MatcherError` naming what is wrong."""
    if not isinstance(text, str):
        raise MatcherError(f'a matcher must be a string like name="value", got {type(text).__name__}')
    head = _NAME_TOKEN_RE.match(text)
    assert head is not None  # every part of the pattern is optional
    name, op = head.group(1), head.group(2)
    if not name or op is None:
        raise MatcherError(
            f'{text!r} is not a matcher: expected name="value", name!="value", name=~"regex" or name!~"regex"'
        )
    _check_name(name, text)
    value = _value(text[head.end() :].rstrip(), text)
    return make_matcher(name, op, value, text)


def _check_name(name: str, text: str) -> None:
    if _LABEL_NAME_RE.fullmatch(name) is None:
        raise MatcherError(
            f"{text!r}: {name!r} is not a label name: expected letters, digits and _ "
            f"(not starting with a digit; no ':'), as Alertmanager requires"
        )


def _value(raw: str, text: str) -> str:
    if not raw:
        raise MatcherError(f'{text!r}: the value is missing (write "" for the empty value)')
    if raw[0] == '"':
        return _unquote(raw, text)
    if raw[0] in "'`":
        raise MatcherError(
            f"{text!r}: quote the value with double quotes (single quotes and backticks "
            f"are not quotes in Alertmanager matchers)"
        )
    bad = sorted({c for c in raw if c in _RESERVED})
    if '"' in bad:
        raise MatcherError(f"{text!r}: unbalanced double quote in the value {raw!r}")
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise MatcherError(
            f"{text!r}: an unquoted value may not contain {shown}; put the value in double quotes"
        )
    return raw


def _unquote(raw: str, text: str) -> str:
    out: list[str] = []
    index = 1
    while index < len(raw):
        char = raw[index]
        if char == "\\":
            if index + 1 >= len(raw):
                raise MatcherError(f"{text!r}: unterminated quoted value (it ends in a backslash)")
            nxt = raw[index + 1]
            if nxt not in _ESCAPES:
                raise MatcherError(
                    f'{text!r}: unknown escape \\{nxt} in the quoted value; only \\", \\\\ and \\n are '
                    f"escapes (write \\\\{nxt} for a backslash followed by {nxt!r})"
                )
            out.append(_ESCAPES[nxt])
            index += 2
            continue
        if char == '"':
            if index != len(raw) - 1:
                raise MatcherError(
                    f"{text!r}: unescaped double quote inside the quoted value "
                    f'(write \\" for a literal quote)'
                )
            return "".join(out)
        if char == "\n":
            raise MatcherError(f"{text!r}: a newline inside the quoted value; write it as \\n")
        out.append(char)
        index += 1
    raise MatcherError(f"{text!r}: unbalanced double quote: the quoted value is not closed")
