"""Alertmanager label matchers: ``name="value"``, ``name!="value"``, ``name=~"regex"``, ``name!~"regex"``.

Semantics follow Alertmanager 0.25: values may be double-quoted (with ``\\"``, ``\\\\`` and ``\\n``
escapes) or unquoted; regexes are fully anchored (``^(?:re)$``); a label that is absent has the empty
value, so ``team!~".+"`` matches an alert without ``team`` and ``team=""`` does too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

__all__ = ["MatchOp", "Matcher", "MatcherError", "parse_matcher"]

MatchOp = Literal["=", "!=", "=~", "!~"]

_MATCHER_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class MatcherError(ValueError):
    """A matcher string that is not valid Alertmanager matcher syntax (message says why)."""


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

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher; raises :class:`MatcherError` naming what is wrong."""
    if not isinstance(text, str):
        raise MatcherError(f"a matcher must be a string like name=\"value\", got {type(text).__name__}")
    found = _MATCHER_RE.match(text)
    if found is None:
        raise MatcherError(f"{text!r} is not a matcher: expected name=\"value\", name!=\"value\", "
                           f"name=~\"regex\" or name!~\"regex\"")
    name, op, raw = found.group(1), found.group(2), found.group(3)
    value = _unquote(raw, text)
    regex: re.Pattern[str] | None = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(f"(?:{value})", re.DOTALL)
        except re.error as exc:
            raise MatcherError(f"{text!r}: invalid regular expression {value!r}: {exc}") from exc
    return Matcher(name, cast(MatchOp, op), value, regex)


def _unquote(raw: str, text: str) -> str:
    quoted = len(raw) >= 2 and raw.startswith('"') and raw.endswith('"')
    if not quoted:
        if raw.startswith('"') or (raw.endswith('"') and not raw.endswith('\\"')):
            raise MatcherError(f"{text!r}: unbalanced double quote in value {raw!r}")
        return raw
    body = raw[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            if index + 1 >= len(body):
                raise MatcherError(f"{text!r}: unterminated quoted value (the closing quote is escaped)")
            nxt = body[index + 1]
            # Alertmanager keeps unknown escapes (e.g. regex \d) as written.
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            index += 2
            continue
        if char == '"':
            raise MatcherError(f"{text!r}: unescaped double quote inside the quoted value")
        out.append(char)
        index += 1
    return "".join(out)
