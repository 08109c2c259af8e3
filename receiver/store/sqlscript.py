"""The SQL script splitter, shared with ``model_registry`` (:mod:`incident_common.sqlscript`)."""

from __future__ import annotations

from incident_common.sqlscript import split_sql

__all__ = ["split_sql"]
