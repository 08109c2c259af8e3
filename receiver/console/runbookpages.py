"""A runbook as the console shows it: the YAML file as written, and what ``receiver lint`` says of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from receiver.errors import ConfigError, NotFound
from receiver.runbooks import RunbookSet, lint_runbooks

__all__ = ["runbook_context"]


def runbook_context(runbooks: RunbookSet, directory: Path, runbook_id: str) -> dict[str, Any]:
    runbook = runbooks.get(runbook_id)  # raises NotFound
    source = runbook.source
    text = source.read_text() if source is not None and source.exists() else None
    try:
        problems = [
            p for p in lint_runbooks(directory) if source is not None and Path(p.file).name == source.name
        ]
        lint_error = None
    except ConfigError as exc:
        problems, lint_error = [], exc.message
    if text is None and runbook.id != "unmatched":
        raise NotFound(f"runbook {runbook_id!r} has no source file")
    return {
        "runbook": runbook,
        "text": text or "",
        "problems": [str(p) for p in problems],
        "lint_error": lint_error,
    }
