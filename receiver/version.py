"""The receiver's version, from the installed package metadata (one source: ``pyproject.toml``).

Shown by ``receiver --version`` and exported as ``receiver_build_info{version, python}`` so a dashboard
can tell which build each replica runs.
"""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["DISTRIBUTION", "build_info", "version"]

DISTRIBUTION = "ml-incident-runbooks"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def build_info() -> dict[str, str]:
    return {"version": version(), "python": platform.python_version()}
