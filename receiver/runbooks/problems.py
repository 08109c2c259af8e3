"""A single problem found in a runbook file, located by file, line and field path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ROOT_FIELD", "YAML_FIELD", "Problem", "format_path"]

#: Field name used for problems about the whole document.
ROOT_FIELD = "<root>"
#: Field name used for YAML syntax errors.
YAML_FIELD = "<yaml>"


@dataclass(frozen=True)
class Problem:
    """``str(problem) == "file:line: field: message"`` (``:line`` omitted when unknown)."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


def format_path(path: Sequence[str | int]) -> str:
    """``("contain", 0, "weight")`` -> ``contain[0].weight``; the empty path is :data:`ROOT_FIELD`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or ROOT_FIELD
