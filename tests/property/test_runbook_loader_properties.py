"""The runbook loader on arbitrary YAML never crashes: it loads, or every problem names the file and,
where the text has lines, the line (``file:line: field: message``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from receiver.runbooks import lint_runbooks

REPO = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((REPO / "runbooks" / "feature-drift.yml").read_text())
BOUNDED = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=15)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_runbooks(draw: st.DrawFn) -> dict[str, Any]:
    """The shipped drift runbook with one top-level field replaced by something arbitrary."""
    doc = dict(SHIPPED)
    key = draw(st.sampled_from([*sorted(doc), "unknown_field"]))
    doc[key] = draw(documents)
    return doc


def _lint(text: str) -> tuple[Path, list[Any]]:
    folder = Path(tempfile.mkdtemp(prefix="rb-prop-"))
    path = folder / "runbook.yml"
    path.write_text(text, encoding="utf-8")
    return path, lint_runbooks(folder)


def _check(path: Path, text: str, problems: list[Any]) -> None:
    for problem in problems:
        assert problem.file == str(path)
        assert str(problem).startswith(f"{path}:")
        if text.strip():
            assert problem.line is not None and problem.line >= 1, str(problem)


@BOUNDED
@given(st.text(max_size=200))
@example("id: x\n\x1b")  # a control character: PyYAML's ReaderError has a position, not a line mark
def test_arbitrary_text(text: str) -> None:
    path, problems = _lint(text)
    _check(path, text, problems)


@BOUNDED
@given(documents)
def test_arbitrary_yaml_documents(doc: Any) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    path, problems = _lint(text)
    assert problems  # none of these is a runbook
    _check(path, text, problems)


@BOUNDED
@given(mutated_runbooks())
def test_a_runbook_with_one_field_replaced(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    path, problems = _lint(text)
    _check(path, text, problems)
