"""The registry-backed kinds through the executor and a real ledger file, as one contract suite over both
registry backends (a real SQLite file and the session's real MLflow server): rollback (success, refusal
with one version, max_active_age), traffic_split, fallback, guardrail with their recovery, dry-run, the
restart rule, and two processes racing. The actions never know which backend they act on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from model_registry import open_registry
from receiver.actions.base import ActionSettings
from receiver.actions.executor import ActionExecutor, StepSpec
from receiver.actions.ledger import LedgerKey
from receiver.actions.registry import default_registry
from tests.support.action_fixtures import Sleeper, make_context, make_ledger

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "mlflow"])
def registry_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """fraud: v1 (served healthily) then v2 promoted (active); LKG = v1. A SQLite file or an MLflow URL."""
    path = request.getfixturevalue("mlflow_url") if request.param == "mlflow" else tmp_path / "registry.db"
    reg = open_registry(path)
    reg.register(
        "fraud", "v1", artifact_path="m/v1", baseline=None, actor="test", reason="seed", healthy=True
    )
    reg.promote("fraud", "v1", actor="test", reason="seed")
    reg.register("fraud", "v2", artifact_path="m/v2", baseline=None, actor="test", reason="seed")
    reg.promote("fraud", "v2", actor="test", reason="release 42")
    return path


def executor_for(
    tmp_path: Path, registry_path: Path, *, clock: Any = time.time, **settings: Any
) -> ActionExecutor:
    options: dict[str, Any] = {"registry_path": str(registry_path), "cooldown_seconds": 0, **settings}
    return ActionExecutor(
        make_ledger(tmp_path / "ledger.db"),
        default_registry(),
        ActionSettings(**options),
        clock=clock,
        sleep=Sleeper(),
    )


def step(raw: dict[str, Any], index: int = 0) -> StepSpec:
    return StepSpec.from_mapping(raw, index)


def test_rollback_promotes_last_known_good_once(tmp_path, registry_path):
    executor = executor_for(tmp_path, registry_path)
    ctx = make_context(executor.settings, incident_id="INC-7")
    outcome = executor.run_step(step({"action": "rollback", "preconditions": {"max_active_age": "1h"}}), ctx)
    assert outcome.state == "succeeded", outcome
    assert {k: outcome.data[k] for k in ("from_version", "to_version")} == {
        "from_version": "v2",
        "to_version": "v1",
    }
    if str(registry_path).startswith("mlflow+"):  # evidence shows the aliases as MLflow users see them
        assert "alias champion=v1" in outcome.summary and str(registry_path)[7:] in outcome.summary
    state = open_registry(registry_path).state("fraud")
    assert state.active_version == "v1" and state.traffic == {"v1": 100.0}
    assert state.version("v2").unhealthy  # type: ignore[union-attr]
    audit = open_registry(registry_path).history("fraud")[0]
    assert audit.action == "rollback" and "incident INC-7" in audit.reason and "rollback-0" in audit.reason
    again = executor.run_step(step({"action": "rollback"}), ctx)
    assert again.duplicate and len(open_registry(registry_path).history("fraud")) == len(
        open_registry(registry_path).history("fraud")
    )
    rec = executor.recover(ctx)
    assert rec[0].state == "skipped" and "not undone automatically" in rec[0].summary
    assert open_registry(registry_path).state("fraud").active_version == "v1"


def test_rollback_with_a_single_version_refuses_and_escalates(tmp_path):
    path = tmp_path / "one.db"
    reg = open_registry(path)
    reg.register("solo", "v1", artifact_path="m/v1", baseline=None, actor="t", reason="seed")
    reg.promote("solo", "v1", actor="t", reason="seed")
    executor = executor_for(tmp_path, path)
    outcome = executor.run_step(step({"action": "rollback"}), make_context(executor.settings, model="solo"))
    assert outcome.state == "refused" and outcome.escalate and "no last known good" in outcome.summary
    # without the precondition the registry itself refuses (NoHealthyFallbackError) - still nothing changes
    other = executor.run_step(
        step({"action": "rollback", "id": "bare", "preconditions": {"require_last_known_good": False}}),
        make_context(executor.settings, model="solo"),
    )
    assert other.state == "refused" and other.escalate and "stays on v1" in other.summary
    state = open_registry(path).state("solo")
    assert state.active_version == "v1" and not state.version("v1").unhealthy  # type: ignore[union-attr]
    assert executor.ledger.get(other.key).state == "refused"  # type: ignore[union-attr]


def test_rollback_precondition_max_active_age(tmp_path, registry_path):
    three_hours_later = lambda: time.time() + 3 * 3600  # noqa: E731 - the registry stamps real time
    executor = executor_for(tmp_path, registry_path, clock=three_hours_later)
    outcome = executor.run_step(
        step({"action": "rollback", "preconditions": {"max_active_age": "2h"}}),
        make_context(executor.settings),
    )
    assert outcome.state == "skipped" and outcome.summary.startswith("precondition:")
    assert "max_active_age 120 min" in outcome.summary
    assert open_registry(registry_path).state("fraud").active_version == "v2"


def test_traffic_split_and_its_recovery(tmp_path, registry_path):
    executor = executor_for(tmp_path, registry_path)
    ctx = make_context(executor.settings)
    outcome = executor.run_step(step({"action": "traffic_split", "to": "last_known_good", "weight": 50}), ctx)
    assert outcome.state == "succeeded", outcome
    assert open_registry(registry_path).state("fraud").traffic == {"v1": 50.0, "v2": 50.0}
    assert outcome.data["previous_traffic"] == {"v2": 100.0}
    recovered = executor.run_step(step({"action": "traffic_split"}), ctx, phase="recover", automatic=False)
    assert recovered.state == "succeeded", recovered
    assert open_registry(registry_path).state("fraud").traffic == {"v2": 100.0}


def test_fallback_and_guardrail_with_recovery_to_the_previous_values(tmp_path, registry_path):
    reg = open_registry(registry_path)
    reg.set_guardrail("fraud", 1, actor="test", reason="baseline policy")
    executor = executor_for(tmp_path, registry_path)
    ctx = make_context(executor.settings)
    steps = [
        step({"action": "fallback", "enabled": True}, 0),
        step({"action": "guardrail", "level": "raise"}, 1),
    ]
    outcomes = executor.run_steps(steps, ctx)
    assert [o.state for o in outcomes] == ["succeeded", "succeeded"]
    assert outcomes[1].data == {"previous_level": 1, "level": 2}
    state = reg.state("fraud")
    assert (state.mode, state.guardrail_level) == ("fallback", 2)
    undone = executor.recover(ctx)
    assert [o.key.kind for o in undone] == ["guardrail", "fallback"]  # newest first
    assert all(o.state == "succeeded" for o in undone), undone
    state = reg.state("fraud")
    assert (state.mode, state.guardrail_level) == ("normal", 1)


def test_guardrail_recovery_refuses_if_a_human_changed_the_level(tmp_path, registry_path):
    executor = executor_for(tmp_path, registry_path)
    ctx = make_context(executor.settings)
    executor.run_step(step({"action": "guardrail", "level": 2}), ctx)
    open_registry(registry_path).set_guardrail("fraud", 3, actor="alice", reason="even stricter")
    undone = executor.run_step(step({"action": "guardrail", "level": "restore"}), ctx, phase="recover")
    assert undone.state == "refused" and "someone changed it" in undone.summary
    assert open_registry(registry_path).state("fraud").guardrail_level == 3


def test_guardrail_blocks_risky_tools_and_recovery_restores_level_and_tools(tmp_path, registry_path):
    reg = open_registry(registry_path)
    reg.set_guardrail("fraud", 1, actor="test", reason="baseline policy")
    executor = executor_for(tmp_path, registry_path)
    ctx = make_context(executor.settings, incident_id="INC-9")
    # the shipped toxic-output runbook's steps
    raise_step = {"id": "raise-guardrail", "action": "guardrail", "level": "raise", "block_risky_tools": True}
    contained = executor.run_step(step(raise_step), ctx)
    assert contained.state == "succeeded", contained
    assert contained.data == {
        "previous_level": 1,
        "level": 2,
        "previous_tools_blocked": False,
        "tools_blocked": True,
    }
    assert contained.summary.startswith("fraud: guardrail level 1 -> 2; risky tools blocked; in ")
    assert "not supported" not in str(contained.timeline)
    state = reg.state("fraud")
    assert (state.guardrail_level, state.tools_blocked) == (2, True)
    audit = reg.history("fraud", 2)
    assert [e.action for e in audit] == ["set_tools_blocked", "set_guardrail"]
    assert all("incident INC-9" in e.reason and "raise-guardrail" in e.reason for e in audit)
    assert (audit[0].before["tools_blocked"], audit[0].after["tools_blocked"]) == (False, True)

    recovered = executor.run_step(
        step({"id": "restore-guardrail", "action": "guardrail", "level": "restore"}),
        ctx,
        phase="recover",
        automatic=False,
    )
    assert recovered.state == "succeeded", recovered
    assert recovered.summary == (
        "fraud: guardrail level 2 -> 1 (restored); risky tools allowed again (restored)"
    )
    assert recovered.data == {
        "level": 1,
        "previous_level": 2,
        "tools_blocked": False,
        "previous_tools_blocked": True,
    }
    state = reg.state("fraud")
    assert (state.guardrail_level, state.tools_blocked) == (1, False)
    assert reg.check() == []


def test_guardrail_keeps_tools_blocked_that_were_blocked_before_the_incident(tmp_path, registry_path):
    reg = open_registry(registry_path)
    reg.set_tools_blocked("fraud", True, actor="alice", reason="policy: no tools on fraud")
    writes = len(reg.history("fraud"))
    executor = executor_for(tmp_path, registry_path)
    ctx = make_context(executor.settings)
    contained = executor.run_step(step({"action": "guardrail", "level": 2, "block_risky_tools": True}), ctx)
    assert contained.state == "succeeded" and "risky tools already blocked" in contained.summary
    assert contained.data["previous_tools_blocked"] is True
    assert len(reg.history("fraud")) == writes + 1  # the level only
    undone = executor.recover(ctx)
    assert [o.state for o in undone] == ["succeeded"], undone
    assert "risky tools stay blocked, as before the incident" in undone[0].summary
    state = reg.state("fraud")
    assert (state.guardrail_level, state.tools_blocked) == (0, True)


def test_guardrail_recovery_refuses_if_someone_changed_the_tool_switch(tmp_path, registry_path):
    executor = executor_for(tmp_path, registry_path)
    ctx = make_context(executor.settings)
    executor.run_step(step({"action": "guardrail", "level": 2, "block_risky_tools": True}), ctx)
    reg = open_registry(registry_path)
    reg.set_tools_blocked("fraud", False, actor="alice", reason="tools needed for the investigation")
    writes = len(reg.history("fraud"))
    undone = executor.run_step(step({"action": "guardrail", "level": "restore"}), ctx, phase="recover")
    assert undone.state == "refused" and undone.escalate
    assert "someone changed it" in undone.summary and "risky tools allowed again" in undone.summary
    assert undone.data == {"level": 2, "tools_blocked": False}
    state = reg.state("fraud")
    assert (state.guardrail_level, state.tools_blocked) == (2, False)  # the level was not restored either
    assert len(reg.history("fraud")) == writes  # nothing written
    # a human moved the level on instead: refused too, and the tools stay blocked
    ctx2 = make_context(executor.settings, incident_id="INC-2")
    reg.set_guardrail("fraud", 0, actor="alice", reason="reset")
    executor.run_step(step({"action": "guardrail", "level": 1, "block_risky_tools": True}), ctx2)
    reg.set_guardrail("fraud", 3, actor="alice", reason="even stricter")
    undone = executor.run_step(step({"action": "guardrail", "level": "restore"}), ctx2, phase="recover")
    assert undone.state == "refused" and "is at level 3, not 1" in undone.summary
    assert (reg.state("fraud").guardrail_level, reg.state("fraud").tools_blocked) == (3, True)


def test_restart_mid_guardrail_finishes_the_tool_switch_without_raising_twice(tmp_path, registry_path):
    clock = [time.time()]
    executor = executor_for(tmp_path, registry_path, clock=lambda: clock[0])
    reg = open_registry(registry_path)

    def strand(incident: str, snapshot: dict[str, Any]) -> None:
        """What a process killed mid guardrail step leaves: running, snapshot taken, lease running out."""
        claim = executor.ledger.claim(
            LedgerKey(incident, "contain", "raise-guardrail", "guardrail"),
            model="fraud",
            runbook_id="toxic-output",
            params={"level": "raise", "block_risky_tools": True, "reason": None},
            owner="dead",
            now=clock[0],
            lease_until=clock[0] + 5,
            containment=True,
            automatic=True,
            dry_run=False,
            guard=None,
        )
        executor.ledger.start(claim.row.id, snapshot=snapshot, now=clock[0], lease_until=clock[0] + 5)
        clock[0] += 10

    resume = lambda: executor.resume_interrupted(  # noqa: E731
        lambda row: make_context(executor.settings, incident_id=row.key.incident_id)
    )
    # died between the two writes: the level is raised, the tools are not blocked yet
    reg.set_guardrail("fraud", 1, actor="receiver", reason="incident INC-G")
    strand("INC-G", {"level": 0, "tools_blocked": False})
    outcome = resume()
    assert [(o.state, o.timeline[-1]["event"]) for o in outcome] == [("succeeded", "reconciled")]
    state = reg.state("fraud")
    assert (state.guardrail_level, state.tools_blocked) == (1, True)  # not raised a second time
    assert outcome[0].data == {
        "previous_level": 0,
        "level": 1,
        "previous_tools_blocked": False,
        "tools_blocked": True,
    }
    # died after both writes (level 0 -> 1, tools blocked): completed without writing again
    writes = len(reg.history("fraud"))
    strand("INC-H", {"level": 0, "tools_blocked": False})
    outcome = resume()
    assert outcome[0].state == "succeeded" and "before the restart" in outcome[0].summary
    assert len(reg.history("fraud")) == writes
    # tools were blocked at the snapshot and someone allowed them since: interrupted, not touched
    reg.set_tools_blocked("fraud", False, actor="alice", reason="manual")
    strand("INC-I", {"level": 1, "tools_blocked": True})
    outcome = resume()
    assert outcome[0].state == "interrupted" and outcome[0].escalate
    assert reg.state("fraud").tools_blocked is False


def test_dry_run_leaves_the_registry_unchanged(tmp_path, registry_path):
    before = open_registry(registry_path).state("fraud").summary()
    history = len(open_registry(registry_path).history("fraud"))
    executor = executor_for(tmp_path, registry_path, dry_run=True)
    ctx = make_context(executor.settings)
    outcomes = executor.run_steps(
        [
            step({"action": "rollback"}, 0),
            step({"action": "traffic_split", "weight": 50}, 1),
            step({"action": "fallback", "enabled": True}, 2),
            step({"action": "guardrail", "level": 3, "block_risky_tools": True}, 3),
        ],
        ctx,
    )
    assert [o.state for o in outcomes] == ["dry_run"] * 4
    assert outcomes[3].timeline[0]["params"]["block_risky_tools"] is True
    assert outcomes[1].timeline[0]["params"] == {"to": "last_known_good", "weight": 50, "reason": None}
    assert executor.recover(ctx)[0].state == "dry_run"  # recovery rehearses too
    assert open_registry(registry_path).state("fraud").summary() == before
    assert open_registry(registry_path).state("fraud").tools_blocked is False
    assert len(open_registry(registry_path).history("fraud")) == history
    rows = executor.ledger.rows("INC-1")
    assert {r.state for r in rows} == {"dry_run"} and len(rows) == 8


def _strand_split(executor: ActionExecutor, incident: str, now: float) -> None:
    """What a process killed mid traffic_split leaves: claimed, snapshot taken, running, lease running out."""
    key = LedgerKey(incident, "contain", "split", "traffic_split")
    claim = executor.ledger.claim(
        key,
        model="fraud",
        runbook_id="rb",
        params={"to": "last_known_good", "weight": 30},
        owner="dead",
        now=now,
        lease_until=now + 5,
        containment=True,
        automatic=True,
        dry_run=False,
        guard=None,
    )
    executor.ledger.start(
        claim.row.id,
        snapshot={"active_version": "v2", "last_known_good": "v1", "traffic": {"v2": 100.0}},
        now=now,
        lease_until=now + 5,
    )


def test_restart_mid_traffic_split_is_rechecked_and_completed(tmp_path, registry_path):
    clock = [time.time()]
    executor = executor_for(tmp_path, registry_path, clock=lambda: clock[0])
    reg = open_registry(registry_path)
    resume = lambda: executor.resume_interrupted(  # noqa: E731
        lambda row: make_context(executor.settings, incident_id=row.key.incident_id)
    )
    # died before the registry write: the registry still matches the snapshot, so the split is applied now
    _strand_split(executor, "INC-A", clock[0])
    clock[0] += 10
    first = resume()
    assert [(o.state, o.timeline[-1]["event"]) for o in first] == [("succeeded", "reconciled")]
    assert reg.state("fraud").traffic == {"v1": 30.0, "v2": 70.0}
    # died after the registry write: already applied, so it is completed without writing again
    writes = len(reg.history("fraud"))
    _strand_split(executor, "INC-B", clock[0])
    clock[0] += 10
    second = resume()
    assert [o.state for o in second] == ["succeeded"] and "before the restart" in second[0].summary
    assert len(reg.history("fraud")) == writes
    # someone else changed traffic meanwhile: not touched, interrupted and escalated
    reg.split("fraud", {"v2": 100}, actor="alice", reason="manual")
    _strand_split(executor, "INC-C", clock[0])
    reg.split("fraud", {"v2": 90, "v1": 10}, actor="alice", reason="manual canary")
    clock[0] += 10
    third = resume()
    assert third[0].state == "interrupted" and third[0].escalate
    assert reg.state("fraud").traffic == {"v1": 10.0, "v2": 90.0}


def test_restart_mid_rollback_is_interrupted_not_rerun(tmp_path, registry_path):
    clock = [time.time()]
    executor = executor_for(tmp_path, registry_path, clock=lambda: clock[0])
    key = LedgerKey("INC-R", "contain", "rollback-0", "rollback")
    claim = executor.ledger.claim(
        key,
        model="fraud",
        runbook_id="rb",
        params={},
        owner="dead",
        now=clock[0],
        lease_until=clock[0] + 5,
        containment=True,
        automatic=True,
        dry_run=False,
        guard=None,
    )
    executor.ledger.start(claim.row.id, snapshot={}, now=clock[0], lease_until=clock[0] + 5)
    clock[0] += 10
    outcome = executor.resume_interrupted(lambda row: make_context(executor.settings, incident_id="INC-R"))
    assert outcome[0].state == "interrupted" and outcome[0].escalate
    assert open_registry(registry_path).state("fraud").active_version == "v2"


_RACER = """
import json, sys, time
from pathlib import Path
from receiver.actions.base import ActionSettings
from receiver.actions.executor import ActionExecutor, StepSpec
from receiver.actions.registry import default_registry
from tests.support.action_fixtures import make_context, make_ledger
ledger_path, registry_path, go = sys.argv[1:4]
ledger = make_ledger(Path(ledger_path))
settings = ActionSettings(registry_path=registry_path, cooldown_seconds=0)
executor = ActionExecutor(ledger, default_registry(), settings)
while not Path(go).exists():
    time.sleep(0.005)
outcomes = [executor.run_step(StepSpec.from_mapping({"action": "rollback"}, 0),
                              make_context(settings, incident_id="INC-HA")) for _ in range(3)]
print(json.dumps([[o.state, o.duplicate] for o in outcomes]))
"""


def test_two_processes_delivering_the_same_incident_roll_back_exactly_once(tmp_path, registry_path):
    go = tmp_path / "go"
    make_ledger(tmp_path / "ledger.db")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(tmp_path / "ledger.db"), str(registry_path), str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.write_text("go")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        results.extend(json.loads(out))
    assert sum(not duplicate for _, duplicate in results) == 1
    winner = [state for state, duplicate in results if not duplicate]
    assert winner == ["succeeded"]
    # the loser saw the winner's row (in progress or done), never ran it
    assert {state for state, _ in results} <= {"claimed", "running", "succeeded"}
    rollbacks = [e for e in open_registry(registry_path).history("fraud") if e.action == "rollback"]
    assert len(rollbacks) == 1
