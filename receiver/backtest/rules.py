"""Load standard Prometheus rule files (``groups:`` of recording and alerting rules) for the backtest.

Only what evaluation needs is kept: group name and interval, and per rule its ``record``/``alert`` name,
``expr``, ``for``, ``keep_firing_for``, ``labels`` and ``annotations``. Every problem is collected and
raised as one :class:`~receiver.errors.BacktestError` naming the file, the group and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from receiver.durations import parse_prometheus_duration
from receiver.errors import BacktestError

__all__ = [
    "AlertRule",
    "RecordingRule",
    "RuleGroup",
    "load_rule_files",
    "parse_duration",
]

_METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DEFAULT_INTERVAL = 60.0  # Prometheus's global.evaluation_interval default


def parse_duration(text: str | int | float) -> float:
    """A Prometheus duration (``1h30m``, ``15s``, ``500ms``) in seconds; ``ValueError`` if malformed."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        raise ValueError(f"duration {text!r} needs a unit (e.g. '{text}s')")
    try:
        return parse_prometheus_duration(str(text))
    except ValueError:
        raise ValueError(f"not a Prometheus duration: {text!r} (expected e.g. 30s, 5m, 1h30m)") from None


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    group: str = ""
    source: str = ""


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    group: str = ""
    interval: float = DEFAULT_INTERVAL
    source: str = ""


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval: float
    source: str
    recording: tuple[RecordingRule, ...] = ()
    alerting: tuple[AlertRule, ...] = ()


def _rule_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
            if not found:
                raise BacktestError(f"rule directory {path} holds no .yml/.yaml files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise BacktestError(f"rule file {path} does not exist")
    return files


def _string_map(
    value: Any, what: str, where: str, problems: list[str], *, keys: re.Pattern[str]
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: {what} must be a mapping, got {type(value).__name__}")
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not keys.match(key):
            problems.append(f"{where}: {what} name {key!r} is not a valid label name")
            continue
        if isinstance(item, (dict, list)) or item is None:
            problems.append(f"{where}: {what} {key!r} must be a string")
            continue
        out[key] = str(item)
    return out


def _duration_field(rule: Mapping[str, Any], key: str, where: str, problems: list[str]) -> float:
    if key not in rule or rule[key] is None:
        return 0.0
    try:
        return parse_duration(rule[key])
    except ValueError as exc:
        problems.append(f"{where}: {key}: {exc}")
        return 0.0


def _parse_rule(
    rule: Any, index: int, group: str, interval: float, source: str, problems: list[str]
) -> RecordingRule | AlertRule | None:
    where = f"{source}: group {group!r} rule #{index + 1}"
    if not isinstance(rule, dict):
        problems.append(f"{where}: a rule must be a mapping, got {type(rule).__name__}")
        return None
    record, alert = rule.get("record"), rule.get("alert")
    if record is not None and alert is not None:
        problems.append(f"{where}: has both 'record' and 'alert'")
        return None
    if record is None and alert is None:
        problems.append(f"{where}: needs 'record' or 'alert'")
        return None
    name = record if record is not None else alert
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: the rule name must be a non-empty string")
        return None
    where = f"{source}: group {group!r} rule {name!r}"
    known = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    unknown = sorted(str(k) for k in rule if k not in known)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
    expr = rule.get("expr")
    if not isinstance(expr, (str, int, float)) or isinstance(expr, bool) or not str(expr).strip():
        problems.append(f"{where}: 'expr' must be a non-empty PromQL string")
        return None
    labels = _string_map(rule.get("labels"), "label", where, problems, keys=_LABEL_NAME_RE)
    if record is not None:
        if not _METRIC_NAME_RE.match(name):
            problems.append(f"{where}: {name!r} is not a valid metric name")
        for key in ("for", "keep_firing_for", "annotations"):
            if key in rule:
                problems.append(f"{where}: a recording rule cannot have '{key}'")
        return RecordingRule(name, str(expr), labels, group, source)
    annotations = _string_map(rule.get("annotations"), "annotation", where, problems, keys=_LABEL_NAME_RE)
    return AlertRule(
        alert=name,
        expr=str(expr),
        for_seconds=_duration_field(rule, "for", where, problems),
        keep_firing_for_seconds=_duration_field(rule, "keep_firing_for", where, problems),
        labels=labels,
        annotations=annotations,
        group=group,
        interval=interval,
        source=source,
    )


def _parse_file(path: Path, default_interval: float, problems: list[str]) -> list[RuleGroup]:
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        problems.append(f"{source}: cannot read: {exc.strerror or exc}")
        return []
    except yaml.YAMLError as exc:
        problems.append(f"{source}: not valid YAML: {' '.join(str(exc).split())}")
        return []
    if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
        problems.append(f"{source}: a rule file needs a top-level 'groups' list")
        return []
    groups: list[RuleGroup] = []
    for g_index, raw_group in enumerate(document["groups"]):
        if not isinstance(raw_group, dict) or not isinstance(raw_group.get("name"), str):
            problems.append(f"{source}: group #{g_index + 1} needs a 'name'")
            continue
        name = raw_group["name"]
        interval = default_interval
        if raw_group.get("interval") is not None:
            try:
                interval = parse_duration(raw_group["interval"])
            except ValueError as exc:
                problems.append(f"{source}: group {name!r}: interval: {exc}")
            if interval <= 0:
                problems.append(f"{source}: group {name!r}: interval must be positive")
                interval = default_interval
        rules = raw_group.get("rules")
        if not isinstance(rules, list):
            problems.append(f"{source}: group {name!r} needs a 'rules' list")
            continue
        parsed = [_parse_rule(r, i, name, interval, source, problems) for i, r in enumerate(rules)]
        groups.append(
            RuleGroup(
                name=name,
                interval=interval,
                source=source,
                recording=tuple(r for r in parsed if isinstance(r, RecordingRule)),
                alerting=tuple(r for r in parsed if isinstance(r, AlertRule)),
            )
        )
    return groups


def load_rule_files(
    paths: Sequence[str | Path], *, default_interval: float = DEFAULT_INTERVAL
) -> list[RuleGroup]:
    """Parse every rule file (a directory contributes its own ``*.yml``/``*.yaml``, not its subdirectories).

    Raises :class:`BacktestError` listing every problem (file, group and rule named) if any file is bad
    or if no alerting rule is defined at all.
    """
    if not paths:
        raise BacktestError("no rule files given")
    problems: list[str] = []
    groups: list[RuleGroup] = []
    for path in _rule_files(paths):
        groups.extend(_parse_file(path, default_interval, problems))
    if not problems and not any(g.alerting for g in groups):
        problems.append("the rule files define no alerting rules")
    if problems:
        raise BacktestError(f"invalid rule files ({len(problems)} problem(s)): {problems[0]}", problems)
    return groups
