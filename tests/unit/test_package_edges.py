"""Package edges point one way: ``model_registry`` and ``model_server`` (which model teams import into their
own servers) never import ``receiver``; what they share with it lives in ``incident_common``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["model_registry", "model_server", "incident_common"])
def test_lower_packages_never_import_the_receiver(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(
            m for m in _imports(path) if m == "receiver" or m.startswith("receiver.")
        )
        for path in sorted((REPO / package).rglob("*.py"))
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_the_receiver_sees_the_same_exception_classes() -> None:
    import incident_common.errors as shared
    import receiver.errors as mine

    assert mine.RegistryError is shared.RegistryError and mine.ReceiverError is shared.ReceiverError
    assert set(mine.__all__) == set(shared.__all__)
