"""Numbered forward migrations, one directory per dialect (``migrations/sqlite``, ``migrations/postgresql``).

A migration is ``NNNN_name.sql``; both dialects carry the same numbers, so ``schema_version`` means the same
on either backend. A database newer than the newest file is refused rather than misread. Applying is the
backend's job (it alone knows how to serialize processes starting together); this module finds the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from receiver.errors import StoreError

__all__ = ["MIGRATIONS_ROOT", "Migration", "discover_migrations", "refuse_newer"]

MIGRATIONS_ROOT = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def __repr__(self) -> str:
        return f"Migration({self.version:04d}_{self.name})"


def discover_migrations(directory: Path) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``directory`` in version order; duplicate numbers are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise StoreError(f"migration file {path.name!r} does not match NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise StoreError(
                f"two migrations share version {version:04d}: {found[version].path.name}, {path.name}"
            )
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def refuse_newer(current: int, migrations: list[Migration], where: str) -> None:
    newest = migrations[-1].version if migrations else 0
    if current > newest:
        raise StoreError(
            f"database {where} has schema version {current}, newer than this receiver knows "
            f"({newest}); upgrade the receiver or point it at another database"
        )
