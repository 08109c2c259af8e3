"""Load a directory of runbook YAML files: parse with line numbers, validate, build a RunbookSet.

:func:`lint_runbooks` returns every problem and never raises for bad content; :func:`load_runbooks`
raises :class:`~receiver.errors.RunbookError` carrying the same problems, so a receiver never starts with
a half-loaded set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from receiver.errors import ConfigError, RunbookError
from receiver.runbooks.model import UNMATCHED_RUNBOOK_ID, Runbook, RunbookSet
from receiver.runbooks.problems import ROOT_FIELD, Problem
from receiver.runbooks.validate import DocumentChecker, schema_problems
from receiver.runbooks.yamllines import parse_yaml

__all__ = ["RUNBOOK_SUFFIXES", "default_schema_path", "lint_runbooks", "load_runbooks", "load_schema"]

RUNBOOK_SUFFIXES = (".yml", ".yaml")


def default_schema_path() -> Path:
    """``runbooks/runbook.schema.json`` of this checkout."""
    return Path(__file__).resolve().parents[2] / "runbooks" / "runbook.schema.json"


def load_schema(path: Path | None = None) -> dict[str, Any]:
    """The runbook JSON Schema; a missing or broken schema file is a :class:`ConfigError`."""
    path = path or default_schema_path()
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the runbook schema {path}: {exc}") from exc
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(f"the runbook schema {path} is not a valid JSON Schema: {exc.message}") from exc
    return schema


@dataclass
class _Loaded:
    runbooks: list[Runbook]
    problems: list[Problem]


def lint_runbooks(directory: Path, *, schema_path: Path | None = None) -> list[Problem]:
    """Every problem in the runbooks under ``directory`` (empty list: all good)."""
    return _load(Path(directory), schema_path).problems


def load_runbooks(directory: Path, *, schema_path: Path | None = None) -> RunbookSet:
    """The runbooks under ``directory``; raises RunbookError(problems=[...]) if anything is wrong."""
    directory = Path(directory)
    loaded = _load(directory, schema_path)
    if loaded.problems:
        first = loaded.problems[0]
        raise RunbookError(
            f"{len(loaded.problems)} problem(s) in runbooks under {directory}; first: {first}",
            problems=loaded.problems,
        )
    return RunbookSet(loaded.runbooks)


def _load(directory: Path, schema_path: Path | None) -> _Loaded:
    validator = Draft202012Validator(load_schema(schema_path))
    if not directory.is_dir():
        return _Loaded([], [Problem(str(directory), None, ROOT_FIELD, "is not a directory")])
    files = sorted(p for p in directory.iterdir() if p.suffix in RUNBOOK_SUFFIXES and p.is_file())
    if not files:
        return _Loaded(
            [],
            [
                Problem(
                    str(directory),
                    None,
                    ROOT_FIELD,
                    "no runbooks (*.yml, *.yaml) found; every alert would be unmatched",
                )
            ],
        )
    runbooks: list[Runbook] = []
    problems: list[Problem] = []
    first_seen: dict[str, Problem] = {}
    for path in files:
        runbook, id_line, file_problems = _load_file(path, validator)
        problems += file_problems
        if runbook is None:
            continue
        here = Problem(str(path), id_line, "id", "")
        if runbook.id in first_seen:
            other = first_seen[runbook.id]
            message = f"duplicate runbook id {runbook.id!r} (also in {other.file}:{other.line})"
            problems.append(Problem(here.file, here.line, "id", message))
            continue
        first_seen[runbook.id] = here
        runbooks.append(runbook)
    return _Loaded(runbooks, problems)


def _load_file(
    path: Path, validator: Draft202012Validator
) -> tuple[Runbook | None, int | None, list[Problem]]:
    """One file: (runbook or None, line of its id, problems)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, [Problem(name, None, ROOT_FIELD, f"cannot read: {exc}")]
    parsed = parse_yaml(text, name)
    problems = list(parsed.problems)
    if parsed.data is None and not problems:
        return None, None, [Problem(name, 1, ROOT_FIELD, "file is empty; expected a runbook mapping")]
    if problems and parsed.data is None:
        return None, None, problems
    doc = parsed.data
    problems += schema_problems(validator, doc, parsed.lines, name)
    if not isinstance(doc, dict):
        return None, None, problems
    problems += DocumentChecker.create(name, parsed.lines).check(doc)
    if isinstance(doc.get("id"), str) and doc["id"] == UNMATCHED_RUNBOOK_ID:
        problems.append(
            Problem(
                name,
                parsed.lines.line_for(("id",)),
                "id",
                f"{UNMATCHED_RUNBOOK_ID!r} is reserved for the built-in runbook",
            )
        )
    problems = _dedupe(problems)
    if problems:
        return None, None, problems
    return Runbook.from_document(doc, source=path), parsed.lines.line_for(("id",)), []


def _dedupe(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.field))
