"""Validate one parsed runbook document: JSON Schema (Draft 2020-12), then semantic checks.

Every problem is located by file, line (from :class:`~receiver.runbooks.yamllines.LineMap`) and field
path. Semantic checks cover what the schema cannot: matcher syntax, Jinja expression/template syntax and
the names expressions may use, action kinds and their parameters, unreachable severity rows, blank PromQL,
verify windows longer than their timeout, duplicate step ids.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import jinja2
from jinja2 import meta
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from receiver.actions.kinds import (
    ACTION_KINDS,
    ACTION_PARAM_SCHEMAS,
    DURATION_PATTERN,
    params_schema,
    step_params,
)
from receiver.errors import TemplateError
from receiver.runbooks.durations import parse_duration
from receiver.runbooks.matchers import MatcherError, parse_matcher
from receiver.runbooks.problems import Problem, format_path
from receiver.runbooks.severity import SEVERITY_NAMES
from receiver.runbooks.yamllines import LineMap
from receiver.templating import compile_expression, compile_template, make_environment

__all__ = ["DocumentChecker", "schema_problems"]

Path_ = tuple[str | int, ...]

#: Names an action step's ``when`` may use (the executor's ``ActionContext.template_context``).
STEP_NAMES: frozenset[str] = frozenset(
    {"labels", "annotations", "value", "level", "facts", "incident", "model"}
)
#: Names owner templates may use.
OWNER_NAMES: frozenset[str] = frozenset({"labels"})
_STEP_LISTS = ("contain", "recover")


def schema_problems(
    validator: Draft202012Validator, instance: Any, lines: LineMap, filename: str, prefix: Path_ = ()
) -> list[Problem]:
    """Every JSON Schema violation as a located problem (``prefix`` is prepended to field paths)."""
    problems: list[Problem] = []
    for error in validator.iter_errors(instance):
        for path, message in _explain(error):
            full = (*prefix, *path)
            problems.append(Problem(filename, lines.line_for(full), format_path(full), message))
    return problems


def _explain(error: ValidationError) -> list[tuple[Path_, str]]:
    path: Path_ = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = list(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        out = []
        for key in error.instance:
            if key in known or any(p.search(str(key)) for p in patterns):
                continue
            hint = difflib.get_close_matches(str(key), known, n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else f"; known fields: {', '.join(known)}"
            out.append(((*path, key), f"unknown field {key!r}{suffix}"))
        return out or [(path, error.message)]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [name for name in cast(list[str], error.validator_value) if name not in error.instance]
        return [((*path, name), "required field is missing") for name in missing] or [(path, error.message)]
    if error.validator == "pattern":
        if error.validator_value == DURATION_PATTERN:
            return [(path, f"{error.instance!r} is not a Prometheus-style duration such as 30s, 5m, 1h30m")]
        if "description" in schema:
            return [(path, f"{error.instance!r} is not {schema['description']}")]
    if error.validator in ("oneOf", "anyOf") and error.context:
        required = [e for e in error.context if e.validator == "required"]
        if len(required) == len(error.context):
            names = sorted({n for e in required for n in cast(list[str], e.validator_value)})
            return [(path, f"one of {', '.join(repr(n) for n in names)} is required")]
        if "description" in schema and not isinstance(error.instance, (dict, list)):
            return [(path, f"{error.instance!r} is not valid: {schema['description']}")]
        best = best_match(error.context)
        if best is not None:
            return _explain(best)
    return [(path, error.message)]


@dataclass
class DocumentChecker:
    """Semantic checks for one runbook document (run after, and independently of, the schema)."""

    filename: str
    lines: LineMap
    env: jinja2.Environment

    @classmethod
    def create(cls, filename: str, lines: LineMap) -> DocumentChecker:
        return cls(filename, lines, make_environment())

    def check(self, doc: Mapping[str, Any]) -> list[Problem]:
        problems: list[Problem] = []
        problems += self._matchers(doc.get("match"))
        problems += self._severity(doc.get("severity"))
        for key in _STEP_LISTS:
            problems += self._steps(key, doc.get(key))
        problems += self._templates(doc)
        problems += self._verify(doc.get("verify"))
        return problems

    def _problem(self, path: Path_, message: str) -> Problem:
        return Problem(self.filename, self.lines.line_for(path), format_path(path), message)

    def _matchers(self, matchers: Any) -> list[Problem]:
        out = []
        for index, text in _items(matchers):
            if isinstance(text, str):
                try:
                    parse_matcher(text)
                except MatcherError as exc:
                    out.append(self._problem(("match", index), str(exc)))
        return out

    def _expression(self, path: Path_, source: Any, allowed: frozenset[str], where: str) -> list[Problem]:
        if not isinstance(source, str) or not source.strip():
            return []
        try:
            compile_expression(source)
        except TemplateError as exc:
            return [self._problem(path, exc.message)]
        unknown = self._undeclared("{{ " + source + " }}") - allowed
        if unknown:
            return [
                self._problem(
                    path,
                    f"unknown name(s) {', '.join(sorted(unknown))} in {source!r}; "
                    f"{where} can use: {', '.join(sorted(allowed))}",
                )
            ]
        return []

    def _template(self, path: Path_, source: Any, allowed: frozenset[str] | None = None) -> list[Problem]:
        if not isinstance(source, str):
            return []
        try:
            compile_template(source)
        except TemplateError as exc:
            return [self._problem(path, exc.message)]
        if allowed is not None:
            unknown = self._undeclared(source) - allowed
            if unknown:
                return [
                    self._problem(
                        path,
                        f"unknown name(s) {', '.join(sorted(unknown))}; "
                        f"this template can use: {', '.join(sorted(allowed))}",
                    )
                ]
        return []

    def _undeclared(self, source: str) -> set[str]:
        return set(meta.find_undeclared_variables(self.env.parse(source)))

    def _severity(self, rows: Any) -> list[Problem]:
        out: list[Problem] = []
        items = list(_items(rows))
        for index, row in items:
            if not isinstance(row, Mapping):
                continue
            if "when" not in row and index != len(items) - 1:
                message = "only the last row may omit 'when': the rows after it are unreachable"
                out.append(self._problem(("severity", index), message))
            out += self._expression(
                ("severity", index, "when"), row.get("when"), SEVERITY_NAMES, "severity expressions"
            )
        return out

    def _steps(self, key: str, steps: Any) -> list[Problem]:
        out: list[Problem] = []
        seen_ids: dict[str, int] = {}
        for index, step in _items(steps):
            if not isinstance(step, Mapping):
                continue
            path: Path_ = (key, index)
            out += self._expression((*path, "when"), step.get("when"), STEP_NAMES, "step conditions")
            out += self._approve((*path, "approve"), step.get("approve"))
            step_id = step.get("id")
            if isinstance(step_id, str):
                if step_id in seen_ids:
                    message = f"duplicate step id {step_id!r} (also {key}[{seen_ids[step_id]}])"
                    out.append(self._problem((*path, "id"), message))
                seen_ids.setdefault(step_id, index)
            kind = step.get("action")
            if not isinstance(kind, str):
                continue
            if kind not in ACTION_PARAM_SCHEMAS:
                hint = difflib.get_close_matches(kind, ACTION_KINDS, n=1)
                suffix = f"; did you mean {hint[0]!r}?" if hint else ""
                out.append(
                    self._problem(
                        (*path, "action"),
                        f"unknown action kind {kind!r}{suffix} (known: {', '.join(ACTION_KINDS)})",
                    )
                )
                continue
            params = step_params(dict(step))
            validator = Draft202012Validator(params_schema(kind, key))
            out += schema_problems(validator, params, self.lines, self.filename, prefix=path)
            out += self._param_templates(path, params)
            if kind == "silence":
                out += self._silence_matchers(path, params.get("matchers"))
        return out

    def _approve(self, path: Path_, block: Any) -> list[Problem]:
        """The approval gate: its condition's names and syntax (the schema checks the shape)."""
        if not isinstance(block, Mapping):
            return []
        return self._expression((*path, "when"), block.get("when"), STEP_NAMES, "approval conditions")

    def _param_templates(self, path: Path_, value: Any) -> list[Problem]:
        if isinstance(value, str):
            return self._template(path, value)
        if isinstance(value, Mapping):
            return [p for k, v in value.items() for p in self._param_templates((*path, str(k)), v)]
        if isinstance(value, list):
            return [p for i, v in enumerate(value) for p in self._param_templates((*path, i), v)]
        return []

    def _silence_matchers(self, path: Path_, matchers: Any) -> list[Problem]:
        out = []
        for index, text in _items(matchers):
            if isinstance(text, str) and "{%" not in text:  # parsed before rendering, as the action does
                try:
                    parse_matcher(text)
                except MatcherError as exc:
                    out.append(self._problem((*path, "matchers", index), str(exc)))
        return out

    def _templates(self, doc: Mapping[str, Any]) -> list[Problem]:
        out: list[Problem] = []
        owners = doc.get("owners")
        if isinstance(owners, Mapping):
            for role, text in owners.items():
                out += self._template(("owners", role), text, OWNER_NAMES)
        out += self._template(("impact",), doc.get("impact"))
        links = doc.get("links")
        if isinstance(links, Mapping):
            for name, text in links.items():
                out += self._template(("links", name), text)
        for index, item in _items(doc.get("evidence")):
            if isinstance(item, Mapping):
                out += self._promql(("evidence", index, "query"), item.get("query"))
        comms = doc.get("comms")
        templates = comms.get("templates") if isinstance(comms, Mapping) else None
        if isinstance(templates, Mapping):
            for event, tpl in templates.items():
                if isinstance(tpl, Mapping):
                    for audience, text in tpl.items():
                        out += self._template(("comms", "templates", event, audience), text)
                else:
                    out += self._template(("comms", "templates", event), tpl)
        return out

    def _promql(self, path: Path_, query: Any) -> list[Problem]:
        if isinstance(query, str) and query and not query.strip():  # "" is the schema's to report
            return [self._problem(path, "PromQL query is blank")]
        return self._template(path, query)

    def _verify(self, verify: Any) -> list[Problem]:
        if not isinstance(verify, Mapping):
            return []
        out = self._promql(("verify", "query"), verify.get("query"))
        try:
            window = parse_duration(verify.get("for", "5m"))
            timeout = parse_duration(verify.get("timeout", "30m"))
        except ValueError:
            return out  # the schema reports bad durations
        if window > timeout:
            message = (
                f"timeout {verify.get('timeout', '30m')} is shorter than the verify window "
                f"for: {verify.get('for', '5m')}, so verification can never pass"
            )
            out.append(self._problem(("verify", "timeout"), message))
        return out


def _items(value: Any) -> Iterable[tuple[int, Any]]:
    return enumerate(value) if isinstance(value, Sequence) and not isinstance(value, str) else ()
