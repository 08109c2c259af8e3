"""The registry contract, on both backends: a real SQLite file and a real MLflow server (the session's
``mlflow server``): promotion, rollback, refusals that change nothing, audit. Backend-specific checks
(tampering with the SQLite file, opening missing files) run on SQLite only."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_registry import (
    ConflictError,
    NoHealthyFallbackError,
    Registry,
    RegistryError,
    UnknownModelError,
    UnknownVersionError,
    compute_baseline,
    open_registry,
)

WHO: dict[str, Any] = {"actor": "tester", "reason": "test"}


@pytest.fixture(params=["sqlite", "mlflow"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "mlflow":
        return open_registry(request.getfixturevalue("mlflow_url"))
    return open_registry(tmp_path / "registry.db")


@pytest.fixture
def sqlite_reg(tmp_path: Path) -> Registry:
    return open_registry(tmp_path / "registry.db")


def register(reg: Registry, *versions: str, healthy: tuple[str, ...] = ()) -> None:
    for version in versions:
        reg.register(
            "m", version, artifact_path=f"/models/{version}", baseline=None, healthy=version in healthy, **WHO
        )


def released(reg: Registry, *versions: str) -> None:
    """Register and promote each version in turn (each promote records the previous one as served)."""
    for version in versions:
        register(reg, version)
        reg.promote("m", version, **WHO)


def snapshot(reg: Registry) -> tuple[dict[str, object], int]:
    return reg.state("m").summary(), len(reg.history("m", limit=1000))


def test_register_stores_version_with_baseline_and_metadata(reg: Registry) -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 2)), rng.integers(0, 2, 200)
    baseline = compute_baseline(X, rng.uniform(size=200), y, ["a", "b"])
    meta = {
        "slo_latency_seconds": 0.1,
        "latency_buckets": [0.05, 0.1, 0.5],
        "kind": "classifier",
        "feature_names": ["a", "b"],
    }
    info = reg.register("m", "v1", artifact_path="/models/v1", baseline=baseline, metadata=meta, **WHO)
    again = reg.version("m", "v1")
    assert again == info
    assert again.baseline == baseline
    assert again.metadata == meta
    assert (again.unhealthy, again.served_healthy) == (False, False)
    state = reg.state("m")
    assert state.active_version is None and state.traffic == {} and state.generation == 1
    assert reg.models() == ["m"]


def test_register_refuses_duplicates_bad_metadata_and_mismatched_features(reg: Registry) -> None:
    register(reg, "v1")
    before = snapshot(reg)
    with pytest.raises(ConflictError, match="already has a version 'v1'"):
        register(reg, "v1")
    with pytest.raises(RegistryError, match="latency_buckets must include slo_latency_seconds"):
        reg.register(
            "m",
            "v2",
            artifact_path="/x",
            baseline=None,
            metadata={"slo_latency_seconds": 0.3, "latency_buckets": [0.1, 1.0]},
            **WHO,
        )
    baseline = compute_baseline(np.ones((4, 1)) * np.arange(4)[:, None], np.linspace(0, 1, 4), None, ["a"])
    with pytest.raises(RegistryError, match="differ from the baseline's features"):
        reg.register(
            "m", "v2", artifact_path="/x", baseline=baseline, metadata={"feature_names": ["b"]}, **WHO
        )
    with pytest.raises(RegistryError, match="reason must be a non-empty string"):
        reg.register("m", "v2", artifact_path="/x", baseline=None, actor="me", reason="  ")
    assert snapshot(reg) == before


def test_promote_marks_the_outgoing_version_as_served_healthily(reg: Registry) -> None:
    released(reg, "v1", "v2")
    state = reg.state("m")
    assert state.active_version == "v2"
    assert state.traffic == {"v2": 100.0}
    assert state.version("v1").served_healthy  # type: ignore[union-attr]
    assert not state.version("v2").served_healthy  # type: ignore[union-attr]
    assert state.last_known_good == "v1"
    assert state.active_since is not None


def test_rollback_goes_to_the_newest_healthy_version_and_marks_the_bad_one(reg: Registry) -> None:
    released(reg, "v1", "v2", "v3")
    result = reg.rollback("m", actor="receiver", reason="INC-9: AUC drop", expected_active="v3")
    assert (result.from_version, result.to_version) == ("v3", "v2")
    state = reg.state("m")
    assert state == result.state
    assert state.active_version == "v2" and state.traffic == {"v2": 100.0}
    assert state.version("v3").unhealthy  # type: ignore[union-attr]
    assert state.last_known_good == "v1"
    entry = reg.history("m", limit=1)[0]
    assert entry.id == result.audit_id
    assert (entry.action, entry.actor, entry.reason) == ("rollback", "receiver", "INC-9: AUC drop")
    assert entry.before["active_version"] == "v3" and entry.after["active_version"] == "v2"
    assert entry.after["unhealthy"] == ["v3"]


def test_rollback_skips_unhealthy_and_never_served_versions(reg: Registry) -> None:
    released(reg, "v1", "v2", "v3")
    register(reg, "v4")  # registered, never served
    reg.mark_unhealthy("m", "v2", **WHO)  # served, but now known bad
    result = reg.rollback("m", **WHO)
    assert result.to_version == "v1"


def test_rollback_with_a_single_version_refuses_and_changes_nothing(reg: Registry) -> None:
    released(reg, "v1")
    before = snapshot(reg)
    with pytest.raises(NoHealthyFallbackError) as info:
        reg.rollback("m", **WHO)
    message = str(info.value)
    assert "'v1' is the only registered version" in message
    assert "Nothing was changed" in message and "fallback" in message
    assert snapshot(reg) == before
    assert not reg.version("m", "v1").unhealthy


def test_rollback_when_all_others_are_unhealthy_refuses_and_explains_each(reg: Registry) -> None:
    released(reg, "v1", "v2", "v3")
    reg.mark_unhealthy("m", "v1", **WHO)
    reg.mark_unhealthy("m", "v2", **WHO)
    before = snapshot(reg)
    with pytest.raises(NoHealthyFallbackError, match=r"v2: marked unhealthy; v1: marked unhealthy"):
        reg.rollback("m", **WHO)
    with pytest.raises(NoHealthyFallbackError):
        reg.split_to_last_known_good("m", 50, **WHO)
    assert snapshot(reg) == before


def test_rollback_with_a_stale_expected_active_conflicts_and_changes_nothing(reg: Registry) -> None:
    released(reg, "v1", "v2", "v3")
    reg.rollback("m", expected_active="v3", **WHO)
    before = snapshot(reg)
    with pytest.raises(ConflictError, match="active version is 'v2', not the expected 'v3'"):
        reg.rollback("m", expected_active="v3", **WHO)
    assert snapshot(reg) == before


def test_rollback_loop_is_impossible(reg: Registry) -> None:
    """Rolling back twice never returns to a version already rolled away from."""
    released(reg, "v1", "v2", "v3")
    assert reg.rollback("m", **WHO).to_version == "v2"
    assert reg.rollback("m", **WHO).to_version == "v1"
    with pytest.raises(NoHealthyFallbackError):
        reg.rollback("m", **WHO)
    with pytest.raises(RegistryError, match="marked unhealthy and will not be promoted"):
        reg.promote("m", "v3", **WHO)


def test_mark_healthy_clears_the_mark_so_the_version_is_eligible_again(reg: Registry) -> None:
    released(reg, "v1", "v2")
    reg.rollback("m", **WHO)  # v2 unhealthy, v1 active
    reg.mark_healthy("m", "v2", **WHO)
    assert reg.state("m").last_known_good is None  # clearing a mark does not make it "served healthily"
    reg.mark_served_healthy("m", "v2", **WHO)
    assert reg.state("m").last_known_good == "v2"


def test_mark_served_healthy_refuses_unhealthy_versions(reg: Registry) -> None:
    released(reg, "v1", "v2")
    reg.mark_unhealthy("m", "v1", **WHO)
    with pytest.raises(RegistryError, match="clear that first"):
        reg.mark_served_healthy("m", "v1", **WHO)


def test_initial_version_registered_healthy_is_a_rollback_target(reg: Registry) -> None:
    register(reg, "v1", healthy=("v1",))
    register(reg, "v2")
    reg.promote("m", "v2", **WHO)  # v1 was never active here, but was registered as proven
    assert reg.rollback("m", **WHO).to_version == "v1"


def test_split_sets_weights_and_refuses_bad_ones_without_change(reg: Registry) -> None:
    released(reg, "v1", "v2")
    state = reg.split("m", {"v1": 25, "v2": 75}, **WHO)
    assert state.traffic == {"v1": 25.0, "v2": 75.0}
    assert state.active_version == "v2"
    before = snapshot(reg)
    with pytest.raises(RegistryError, match="must sum to 100"):
        reg.split("m", {"v1": 50, "v2": 20}, **WHO)
    with pytest.raises(UnknownVersionError, match="no version"):
        reg.split("m", {"v1": 50, "v9": 50}, **WHO)
    reg_unhealthy = reg.mark_unhealthy("m", "v1", **WHO)
    before = (reg_unhealthy.summary(), before[1] + 1)
    with pytest.raises(RegistryError, match="marked unhealthy: v1"):
        reg.split("m", {"v1": 50, "v2": 50}, **WHO)
    assert snapshot(reg) == before


def test_split_drops_zero_weights(reg: Registry) -> None:
    released(reg, "v1", "v2")
    assert reg.split("m", {"v1": 0, "v2": 100}, **WHO).traffic == {"v2": 100.0}


def test_split_to_last_known_good(reg: Registry) -> None:
    released(reg, "v1", "v2")
    assert reg.split_to_last_known_good("m", 50, **WHO).traffic == {"v1": 50.0, "v2": 50.0}
    assert reg.split_to_last_known_good("m", 100, **WHO).traffic == {"v1": 100.0}
    with pytest.raises(RegistryError, match=r"percent in \(0, 100\]"):
        reg.split_to_last_known_good("m", 0, **WHO)


def test_split_before_any_promotion_is_refused(reg: Registry) -> None:
    register(reg, "v1", "v2")
    with pytest.raises(RegistryError, match="no active version; promote one"):
        reg.split("m", {"v1": 50, "v2": 50}, **WHO)


def test_mode_and_guardrail(reg: Registry) -> None:
    released(reg, "v1")
    assert reg.set_mode("m", "fallback", **WHO).mode == "fallback"
    assert reg.set_guardrail("m", 3, **WHO).guardrail_level == 3
    before = snapshot(reg)
    with pytest.raises(RegistryError, match="mode must be one of normal, fallback"):
        reg.set_mode("m", "off", **WHO)
    for bad in (4, -1, True, "2"):
        with pytest.raises(RegistryError, match=r"guardrail level must be an integer 0\.\.3"):
            reg.set_guardrail("m", bad, **WHO)  # type: ignore[arg-type]
    assert snapshot(reg) == before


def test_unknown_model_and_version(reg: Registry) -> None:
    released(reg, "v1")
    with pytest.raises(UnknownModelError, match="unknown model 'other'"):
        reg.state("other")
    with pytest.raises(UnknownModelError):
        reg.generation("other")
    with pytest.raises(UnknownModelError):
        reg.rollback("other", **WHO)
    with pytest.raises(UnknownVersionError, match=r"no version 'v9' \(registered: v1\)"):
        reg.promote("m", "v9", **WHO)
    assert reg.models() == ["m"]  # the failed rollback did not create 'other'


def test_generation_counts_every_change(reg: Registry) -> None:
    released(reg, "v1", "v2")  # 4 changes
    assert reg.generation("m") == 4
    with pytest.raises(RegistryError):
        reg.split("m", {"v1": 1}, **WHO)  # refused: no change
    assert reg.generation("m") == 4
    reg.set_mode("m", "fallback", **WHO)
    assert reg.generation("m") == 5 == reg.state("m").generation


def test_history_records_every_change_newest_first_and_per_model(reg: Registry) -> None:
    released(reg, "v1", "v2")
    reg.register("other", "a1", artifact_path="/x", baseline=None, actor="bob", reason="new model")
    reg.split_to_last_known_good("m", 50, actor="receiver", reason="INC-1 drift")
    entries = reg.history("m")
    assert [e.action for e in entries] == [
        "split_to_last_known_good",
        "promote",
        "register",
        "promote",
        "register",
    ]
    assert entries[0].before["traffic"] == {"v2": 100.0}
    assert entries[0].after["traffic"] == {"v1": 50.0, "v2": 50.0}
    assert entries[0].after == reg.state("m").summary()
    # each entry's "before" is the previous entry's "after": the history replays the state
    for newer, older in itertools.pairwise(entries):
        assert newer.before == older.after
    assert entries[-1].before == {}
    assert [e.model for e in reg.history()][:2] == ["m", "other"]
    assert len(reg.history(limit=2)) == 2
    with pytest.raises(RegistryError, match="limit must be a positive integer"):
        reg.history(limit=0)


def test_check_reports_a_tampered_registry(sqlite_reg: Registry, tmp_path: Path) -> None:
    reg = sqlite_reg
    released(reg, "v1", "v2")
    assert reg.check() == []
    with sqlite3.connect(tmp_path / "registry.db") as conn:
        conn.execute("UPDATE models SET traffic = '{\"v2\": 60}' WHERE name = 'm'")
    problems = reg.check()
    assert any("sum to 60, not 100" in p for p in problems)
    assert any("newest audit entry does not match" in p for p in problems)


def test_open_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no model registry at"):
        open_registry(tmp_path / "missing.db", create=False)
    with pytest.raises(RegistryError, match="does not exist"):
        open_registry(tmp_path / "no-such-dir" / "r.db")


def test_a_file_that_is_not_sqlite_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not a database, and it must not be overwritten" * 100)
    with pytest.raises(RegistryError, match="cannot initialise the registry"):
        open_registry(path)
    assert path.read_text().startswith("this is not a database")
