"""Parse YAML while remembering the line of every mapping key and sequence item.

PyYAML's composer gives each node a start mark; we compose the node tree once, construct plain Python
data from it, and walk the same tree to map field paths (``("contain", 0, "weight")``) to 1-based lines.
Duplicate mapping keys, which PyYAML silently collapses (losing data), are reported as problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from receiver.runbooks.problems import YAML_FIELD, Problem, format_path

__all__ = ["LineMap", "ParsedYaml", "parse_yaml"]

PathKey = tuple[str | int, ...]


@dataclass
class LineMap:
    """Field path -> 1-based line; :meth:`line_for` falls back to the nearest enclosing field."""

    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_for(self, path: Sequence[str | int]) -> int | None:
        key = tuple(path)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]


@dataclass
class ParsedYaml:
    data: Any
    lines: LineMap
    problems: list[Problem]


def parse_yaml(text: str, filename: str) -> ParsedYaml:
    """Parse one YAML document. Syntax errors become problems (with line), never exceptions."""
    lines = LineMap()
    problems: list[Problem] = []
    # libyaml's loader when available (several times faster); both keep node marks.
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return ParsedYaml(None, lines, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        problems.append(
            Problem(filename, mark.line + 1 if mark else None, YAML_FIELD, f"YAML syntax error: {message}")
        )
        return ParsedYaml(None, lines, problems)
    except yaml.YAMLError as exc:
        # e.g. a ReaderError (a control character): it has a character position, not a mark
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        problems.append(Problem(filename, line, YAML_FIELD, f"YAML error: {exc}"))
        return ParsedYaml(None, lines, problems)
    finally:
        loader.dispose()
    _walk(node, (), lines, problems, filename, set())
    return ParsedYaml(data, lines, problems)


def _walk(
    node: yaml.Node, path: PathKey, lines: LineMap, problems: list[Problem], filename: str, active: set[int]
) -> None:
    if id(node) in active:  # recursive alias: already being walked
        return
    lines.lines.setdefault(path, node.start_mark.line + 1)
    active.add(id(node))
    try:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    continue
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    problems.append(
                        Problem(
                            filename,
                            line,
                            format_path((*path, key)),
                            f"duplicate key {key!r} (first at line {seen[key]})",
                        )
                    )
                    continue
                seen[key] = line
                lines.lines[(*path, key)] = line
                _walk(value_node, (*path, key), lines, problems, filename, active)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.lines[(*path, index)] = item.start_mark.line + 1
                _walk(item, (*path, index), lines, problems, filename, active)
    finally:
        active.discard(id(node))
