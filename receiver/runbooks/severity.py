"""Severity decision tables: the first row whose ``when`` expression is true gives the SEV level.

Rows are ``{when: <sandboxed Jinja expression>, level: SEV1|SEV2|SEV3}``; the last row may omit ``when``.
The expression sees ``labels``, ``annotations`` (missing keys read as ``""``, like Alertmanager),
``value`` (float from the ``value`` annotation, or None), ``firing_count`` and ``facts`` (incident facts,
strict: a missing fact is an error). There is no ``level`` yet: it is what the table decides.
A row whose expression fails at run time (``None >= 0.2``) counts as false; the failure is returned in the
trace so the caller can put it on the incident timeline. No true row: :data:`DEFAULT_LEVEL`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from receiver.errors import TemplateError
from receiver.templating import evaluate

__all__ = [
    "DEFAULT_LEVEL",
    "LEVELS",
    "SEVERITY_NAMES",
    "SeverityContext",
    "SeverityDecision",
    "SeverityRow",
    "SeverityRowError",
    "decide",
    "label_data",
    "more_severe",
    "parse_value",
]

LEVELS: tuple[str, ...] = ("SEV1", "SEV2", "SEV3")
DEFAULT_LEVEL = "SEV3"
#: Names a severity expression may use.
SEVERITY_NAMES: frozenset[str] = frozenset({"labels", "annotations", "value", "firing_count", "facts"})


def parse_value(annotations: Mapping[str, str]) -> float | None:
    """The ``value`` annotation as a finite-or-infinite float; None when absent, empty or not a number."""
    raw = annotations.get("value")
    if raw is None:
        return None
    try:
        number = float(str(raw).strip())
    except ValueError:
        return None
    return None if math.isnan(number) else number


def more_severe(a: str, b: str) -> str:
    """The more severe of two levels (``SEV1`` beats ``SEV2``)."""
    return a if LEVELS.index(a) <= LEVELS.index(b) else b


class _EmptyDefault(dict[str, str]):
    """Label/annotation data for expressions: a missing key reads as ``""`` (Alertmanager semantics)."""

    def __missing__(self, key: str) -> str:
        return ""


def label_data(values: Mapping[str, Any]) -> dict[str, str]:
    """A copy of labels/annotations for templates: string values, and a missing key reads as ``""``."""
    return _EmptyDefault({str(k): str(v) for k, v in values.items()})


@dataclass(frozen=True)
class SeverityContext:
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float | None
    firing_count: int = 1
    facts: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_alert(
        cls,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        *,
        firing_count: int = 1,
        facts: Mapping[str, Any] | None = None,
    ) -> SeverityContext:
        """Build a context from an alert, parsing ``value`` from its annotations."""
        return cls(
            labels, annotations, parse_value(annotations), firing_count, MappingProxyType(dict(facts or {}))
        )

    def variables(self) -> dict[str, Any]:
        """The expression namespace (label values are copied as plain data, never templates)."""
        return {
            "labels": label_data(self.labels),
            "annotations": label_data(self.annotations),
            "value": self.value,
            "firing_count": self.firing_count,
            "facts": dict(self.facts),
        }


@dataclass(frozen=True)
class SeverityRow:
    level: str
    when: str | None = None


@dataclass(frozen=True)
class SeverityRowError:
    row: int
    expression: str
    message: str

    def __str__(self) -> str:
        return f"severity[{self.row}].when: {self.message}"


@dataclass(frozen=True)
class SeverityDecision:
    level: str
    row: int | None  # index of the winning row; None = default
    errors: tuple[SeverityRowError, ...] = ()


def decide(rows: Sequence[SeverityRow], ctx: SeverityContext) -> SeverityDecision:
    """Walk the table; first true row wins. Failing rows count as false and are reported."""
    variables = ctx.variables()
    errors: list[SeverityRowError] = []
    for index, row in enumerate(rows):
        if row.when is None:
            return SeverityDecision(row.level, index, tuple(errors))
        try:
            hit = bool(evaluate(row.when, variables))
        except TemplateError as exc:
            errors.append(SeverityRowError(index, row.when, exc.message))
            continue
        except Exception as exc:  # e.g. bool() of a StrictUndefined result
            errors.append(SeverityRowError(index, row.when, f"{type(exc).__name__}: {exc}"))
            continue
        if hit:
            return SeverityDecision(row.level, index, tuple(errors))
    return SeverityDecision(DEFAULT_LEVEL, None, tuple(errors))
