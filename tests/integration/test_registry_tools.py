"""The risky-tool switch (``tools_blocked``) on a real SQLite registry: set and clear, audit, generation,
refusals that change nothing, and a registry file of the previous schema upgraded in place."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from model_registry import Registry, RegistryError, UnknownModelError, open_registry
from model_registry.sqlite import SCHEMA_VERSION

WHO: dict[str, Any] = {"actor": "tester", "reason": "INC-9 toxic output"}

#: The registry schema as first released (schema version 1), verbatim: no ``tools_blocked`` column.
OLD_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS models (
    name            TEXT PRIMARY KEY,
    active_version  TEXT,
    traffic         TEXT NOT NULL DEFAULT '{}',
    mode            TEXT NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'fallback')),
    guardrail_level INTEGER NOT NULL DEFAULT 0 CHECK (guardrail_level BETWEEN 0 AND 3),
    generation      INTEGER NOT NULL DEFAULT 0,
    active_since    REAL,
    created_at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    model          TEXT NOT NULL REFERENCES models(name),
    version        TEXT NOT NULL,
    artifact_path  TEXT NOT NULL,
    registered_at  REAL NOT NULL,
    metadata       TEXT NOT NULL DEFAULT '{}',
    baseline       TEXT,
    unhealthy      INTEGER NOT NULL DEFAULT 0,
    served_healthy INTEGER NOT NULL DEFAULT 0,
    UNIQUE (model, version)
);
CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     REAL NOT NULL,
    model  TEXT NOT NULL,
    action TEXT NOT NULL,
    actor  TEXT NOT NULL,
    reason TEXT NOT NULL,
    before TEXT NOT NULL,
    after  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_model ON audit (model, id);
"""


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    reg = open_registry(tmp_path / "registry.db")
    reg.register("chat", "v1", artifact_path="/models/v1", baseline=None, metadata={"kind": "llm"}, **WHO)
    reg.promote("chat", "v1", **WHO)
    return reg


def test_a_new_model_allows_tools(reg: Registry) -> None:
    state = reg.state("chat")
    assert state.tools_blocked is False
    assert state.to_dict()["tools_blocked"] is False
    assert state.summary()["tools_blocked"] is False


def test_block_and_allow_with_audit_and_generation(reg: Registry) -> None:
    generation = reg.generation("chat")
    state = reg.set_tools_blocked("chat", True, **WHO)
    assert state.tools_blocked is True and state.generation == generation + 1
    assert reg.state("chat").tools_blocked is True
    assert reg.state("chat").to_dict()["tools_blocked"] is True
    entry = reg.history("chat", 1)[0]
    assert (entry.action, entry.actor, entry.reason) == ("set_tools_blocked", "tester", "INC-9 toxic output")
    assert entry.before["tools_blocked"] is False and entry.after["tools_blocked"] is True
    assert entry.before["generation"] == generation and entry.after["generation"] == generation + 1
    assert entry.after == reg.state("chat").summary()
    # nothing else moved
    assert {k: v for k, v in entry.before.items() if k not in ("tools_blocked", "generation")} == {
        k: v for k, v in entry.after.items() if k not in ("tools_blocked", "generation")
    }

    cleared = reg.set_tools_blocked("chat", False, actor="alice", reason="INC-9 recovered")
    assert cleared.tools_blocked is False and reg.generation("chat") == generation + 2
    entry = reg.history("chat", 1)[0]
    assert (entry.before["tools_blocked"], entry.after["tools_blocked"]) == (True, False)
    assert reg.check() == []


def test_setting_the_same_value_is_still_an_audited_change(reg: Registry) -> None:
    generation = reg.generation("chat")
    reg.set_tools_blocked("chat", False, **WHO)
    assert reg.generation("chat") == generation + 1
    assert reg.history("chat", 1)[0].action == "set_tools_blocked"


@pytest.mark.parametrize("bad", [1, 0, "true", "block", None, 1.0])
def test_a_non_bool_is_refused_with_an_exact_message_and_nothing_changes(reg: Registry, bad: Any) -> None:
    before = reg.state("chat").summary(), len(reg.history("chat", limit=1000))
    with pytest.raises(RegistryError) as raised:
        reg.set_tools_blocked("chat", bad, **WHO)
    assert raised.value.message == f"tools_blocked must be True or False, got {bad!r}"
    assert (reg.state("chat").summary(), len(reg.history("chat", limit=1000))) == before


def test_unknown_model_and_missing_reason_are_refused(reg: Registry) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'other'"):
        reg.set_tools_blocked("other", True, **WHO)
    with pytest.raises(RegistryError, match="reason must be a non-empty string"):
        reg.set_tools_blocked("chat", True, actor="tester", reason=" ")
    assert reg.models() == ["chat"] and reg.state("chat").tools_blocked is False


def _old_registry(path: Path) -> None:
    """A registry file as schema version 1 wrote it: one model, two versions, three audit entries."""
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA_V1)
    conn.execute("PRAGMA user_version = 1")
    after: dict[str, Any] = {}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("register", {"active_version": None, "traffic": {}, "versions": ["v1"], "served_healthy": []}),
        ("promote", {"active_version": "v1", "traffic": {"v1": 100.0}}),
        ("register", {"versions": ["v1", "v2"]}),
        ("set_guardrail", {"guardrail_level": 2}),
    ]
    for i, (action, change) in enumerate(steps, start=1):
        before = after
        after = {
            "active_version": None,
            "traffic": {},
            "mode": "normal",
            "guardrail_level": 0,
            "last_known_good": None,
            "versions": [],
            "unhealthy": [],
            "served_healthy": [],
            **{k: v for k, v in before.items() if k != "generation"},
            **change,
            "generation": i,
        }
        conn.execute(
            "INSERT INTO audit (at, model, action, actor, reason, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                1_700_000_000.0 + i,
                "chat",
                action,
                "bob",
                f"old change {i}",
                json.dumps(before),
                json.dumps(after),
            ),
        )
    conn.execute(
        "INSERT INTO models (name, active_version, traffic, mode, guardrail_level, generation, active_since, "
        "created_at) VALUES ('chat', 'v1', '{\"v1\": 100.0}', 'normal', 2, 4, 1700000002.0, 1700000001.0)"
    )
    for version, registered in (("v1", 1_700_000_001.0), ("v2", 1_700_000_003.0)):
        conn.execute(
            "INSERT INTO versions (model, version, artifact_path, registered_at, metadata) "
            "VALUES ('chat', ?, ?, ?, '{\"kind\": \"llm\"}')",
            (version, f"/models/{version}", registered),
        )
    conn.commit()
    conn.close()


def _columns(path: Path) -> list[tuple[str, str, int, Any]]:
    conn = sqlite3.connect(path)
    try:
        return [(r[1], r[2], r[3], r[4]) for r in conn.execute("PRAGMA table_info(models)")]
    finally:
        conn.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_an_old_schema_file_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_registry(path)
    assert "tools_blocked" not in [c[0] for c in _columns(path)]

    reg = open_registry(path, create=False)
    assert SCHEMA_VERSION == 2 and _user_version(path) == 2
    assert ("tools_blocked", "INTEGER", 1, "0") in _columns(path)
    state = reg.state("chat")
    assert (state.active_version, state.traffic, state.guardrail_level) == ("v1", {"v1": 100.0}, 2)
    assert [v.version for v in state.versions] == ["v1", "v2"]
    assert state.version("v2").metadata == {"kind": "llm"}  # type: ignore[union-attr]
    assert state.generation == 4 and state.tools_blocked is False
    history = reg.history("chat")
    assert [e.reason for e in history] == [f"old change {i}" for i in (4, 3, 2, 1)]
    assert "tools_blocked" not in history[0].after  # the old entries are kept as they were written
    assert reg.check() == []  # ... and still match the state (the missing key reads as False)

    reg.set_tools_blocked("chat", True, **WHO)
    entry = reg.history("chat", 1)[0]
    assert (entry.before["tools_blocked"], entry.after["tools_blocked"]) == (False, True)
    assert reg.check() == []
    again = open_registry(path, create=False)  # opening it again migrates nothing
    assert again.state("chat").tools_blocked is True and again.generation("chat") == 5
    assert [c[0] for c in _columns(path)].count("tools_blocked") == 1


def test_processes_opening_an_old_file_together_upgrade_it_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_registry(path)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            open_registry(path, create=False).state("chat")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert _user_version(path) == 2 and [c[0] for c in _columns(path)].count("tools_blocked") == 1
    assert open_registry(path).state("chat").generation == 4


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_registry(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError, match=f"has schema version {SCHEMA_VERSION + 1}; this code knows 2"):
        open_registry(path)
    assert _user_version(path) == SCHEMA_VERSION + 1
