"""Executor semantics on a real SQLite ledger file, with a small in-process action kind written for the test
(it stands for any kind; the real kinds are exercised against real parts in tests/integration)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from receiver.actions.base import ActionContext, ActionResult, ActionSettings, BaseAction
from receiver.actions.executor import ActionExecutor, StepSpec
from receiver.actions.ledger import LedgerKey
from receiver.actions.registry import ActionRegistry
from receiver.errors import ActionOutcomeUnknown, ActionParamError, ActionTransient
from tests.support.action_fixtures import Clock, Sleeper, make_context, make_ledger


class Probe(BaseAction):
    """Records every call; ``script`` lists what successive attempts do (ok, transient, error, hang)."""

    def __init__(
        self,
        kind: str = "probe",
        *,
        containment: bool = True,
        idempotent: bool = False,
        script: list[str] | None = None,
    ) -> None:
        self.kind = kind
        self.recoverable = containment
        self.containment = containment
        self.idempotent = idempotent
        self.script = list(script or [])
        self.calls: list[dict[str, Any]] = []
        self.recovered: list[Mapping[str, Any]] = []
        self.lock = threading.Lock()

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        with self.lock:
            self.calls.append(dict(params))
            what = self.script.pop(0) if self.script else "ok"
        if what == "transient":
            raise ActionTransient("probe: upstream answered 503")
        if what == "error":
            raise RuntimeError("probe exploded")
        if what == "unknown":
            raise ActionOutcomeUnknown("probe: sent, no answer within 2s (outcome unknown)")
        if what == "hang":
            time.sleep(0.8)
        if what == "slow":
            time.sleep(0.2)
        return ActionResult("succeeded", "probed", {"n": len(self.calls), "params": dict(params)})

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        return ActionResult("succeeded", "reconciled", {"reconciled": True})

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        self.recovered.append(dict(prior))
        return ActionResult("succeeded", "undone", {"undid": prior.get("n")})


SETTINGS = ActionSettings(cooldown_seconds=600, flap_max=3, default_retries=2, default_timeout=5)


def build(
    tmp_path: Path,
    *probes: Probe,
    settings: ActionSettings = SETTINGS,
    clock: Clock | None = None,
    **kwargs: Any,
) -> tuple[ActionExecutor, Sleeper, Clock]:
    sleeper, clock = Sleeper(), clock or Clock()
    executor = ActionExecutor(
        make_ledger(tmp_path / "ledger.db"),
        ActionRegistry(probes or [Probe()]),
        settings,
        clock=clock,
        sleep=sleeper,
        **kwargs,
    )
    return executor, sleeper, clock


def step(**raw: Any) -> StepSpec:
    return StepSpec.from_mapping({"action": "probe", **raw}, 0)


def test_a_step_runs_once_across_repeats(tmp_path):
    probe = Probe()
    executor, _, _ = build(tmp_path, probe)
    ctx = make_context(SETTINGS)
    first = executor.run_step(step(weight=50), ctx)
    second = executor.run_step(step(weight=50), ctx)
    assert first.state == "succeeded" and not first.duplicate
    assert [e["event"] for e in first.timeline] == ["claimed", "attempt", "succeeded"]
    assert second.duplicate and second.state == "succeeded" and second.timeline == []
    assert second.data == first.data
    assert len(probe.calls) == 1


def test_eight_threads_racing_run_the_step_exactly_once(tmp_path):
    probe = Probe(script=["slow"])
    executor, _, _ = build(tmp_path, probe)
    ctx = make_context(SETTINGS)
    barrier = threading.Barrier(8)
    outcomes = []

    def worker() -> None:
        barrier.wait(timeout=5)
        outcomes.append(executor.run_step(step(), ctx))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(probe.calls) == 1
    assert sum(not o.duplicate for o in outcomes) == 1
    assert len(outcomes) == 8


def test_transient_failures_are_retried_with_exponential_backoff(tmp_path):
    probe = Probe(script=["transient", "transient", "ok"])
    executor, sleeper, _ = build(tmp_path, probe)
    outcome = executor.run_step(step(retries=3), make_context(SETTINGS))
    assert outcome.state == "succeeded" and outcome.attempts == 3
    assert sleeper.delays == [0.5, 1.0]
    events = [e["event"] for e in outcome.timeline]
    assert events == [
        "claimed",
        "attempt",
        "attempt_failed",
        "attempt",
        "attempt_failed",
        "attempt",
        "succeeded",
    ]
    assert "503" in outcome.timeline[2]["error"] and outcome.timeline[2]["retry_in"] == 0.5
    row = executor.ledger.get(outcome.key)
    assert row is not None and row.state == "succeeded" and row.attempts == 3


def test_retries_exhausted_is_failed_with_the_last_error(tmp_path):
    probe = Probe(script=["transient"] * 5)
    executor, sleeper, _ = build(tmp_path, probe)
    outcome = executor.run_step(step(retries=1), make_context(SETTINGS))
    assert outcome.state == "failed" and outcome.attempts == 2 and "503" in (outcome.error or "")
    assert len(probe.calls) == 2 and sleeper.delays == [0.5]
    assert executor.ledger.get(outcome.key).state == "failed"  # type: ignore[union-attr]


def test_unexpected_errors_are_recorded_not_retried_not_raised(tmp_path):
    probe = Probe(script=["error", "ok"])
    executor, _, _ = build(tmp_path, probe)
    outcome = executor.run_step(step(retries=3), make_context(SETTINGS))
    assert outcome.state == "failed" and outcome.error == "RuntimeError: probe exploded"
    assert len(probe.calls) == 1


def test_a_hung_attempt_times_out_and_is_not_retried_for_non_idempotent_kinds(tmp_path):
    probe = Probe(script=["hang", "ok"])
    executor, _, _ = build(tmp_path, probe, grace_seconds=0.1)
    outcome = executor.run_step(step(timeout="200ms", retries=2), make_context(SETTINGS))
    assert outcome.state == "unknown"  # it may still complete: the same as a call sent without an answer
    assert "did not finish within its timeout of 0.2s" in (outcome.error or "")
    assert "not re-sent" in outcome.summary and outcome.escalate
    assert len(probe.calls) == 1


def test_an_unknown_outcome_is_never_re_sent_for_non_idempotent_kinds(tmp_path):
    probe = Probe(script=["unknown", "ok"])
    executor, _, _ = build(tmp_path, probe)
    outcome = executor.run_step(step(retries=2), make_context(SETTINGS))
    assert outcome.state == "unknown" and outcome.attempts == 1 and len(probe.calls) == 1
    assert outcome.escalate and "outcome unknown" in outcome.escalate
    assert outcome.timeline[-1]["event"] == "unknown"


def test_an_unknown_outcome_is_retried_for_idempotent_kinds(tmp_path):
    probe = Probe(idempotent=True, script=["unknown", "ok"])
    executor, _, _ = build(tmp_path, probe)
    outcome = executor.run_step(step(retries=1), make_context(SETTINGS))
    assert outcome.state == "succeeded" and outcome.attempts == 2


def test_a_hung_attempt_is_retried_for_idempotent_kinds(tmp_path):
    probe = Probe(idempotent=True, script=["hang", "ok"])
    executor, _, _ = build(tmp_path, probe, grace_seconds=0.1)
    outcome = executor.run_step(step(timeout="200ms", retries=1), make_context(SETTINGS))
    assert outcome.state == "succeeded" and outcome.attempts == 2


def test_when_false_is_skipped_without_claiming_so_a_later_severity_can_still_act(tmp_path):
    probe = Probe()
    executor, _, _ = build(tmp_path, probe)
    s = step(when='level in ["SEV1", "SEV2"]')
    low = executor.run_step(s, make_context(SETTINGS, severity="SEV3"))
    assert low.state == "skipped" and low.timeline[0]["reason"] == "condition"
    assert executor.ledger.get(low.key) is None and probe.calls == []
    high = executor.run_step(s, make_context(SETTINGS, severity="SEV2"))
    assert high.state == "succeeded" and len(probe.calls) == 1


def test_a_broken_condition_is_a_clear_failure(tmp_path):
    executor, _, _ = build(tmp_path)
    outcome = executor.run_step(step(when="labels.nope == 1"), make_context(SETTINGS))
    assert outcome.state == "failed" and "labels.nope == 1" in (outcome.error or "")


def test_params_are_rendered_with_labels_as_data(tmp_path):
    probe = Probe(containment=False)
    executor, _, _ = build(tmp_path, probe)
    labels = {"model": "fraud", "team": "{{ 7 * 7 }} {% if 1 %}x{% endif %} <b>"}
    outcome = executor.run_step(
        step(note="team={{ labels.team }} level={{ level }}"), make_context(SETTINGS, labels=labels)
    )
    assert probe.calls == [{"note": "team={{ 7 * 7 }} {% if 1 %}x{% endif %} <b> level=SEV2"}]
    assert outcome.params == probe.calls[0]


def test_secret_looking_params_are_masked_in_ledger_and_timeline(tmp_path):
    probe = Probe(containment=False)
    executor, _, _ = build(tmp_path, probe)
    outcome = executor.run_step(
        step(api_token="s3cr3t", headers={"Authorization": "Bearer s3cr3t"}, token_file="/run/secrets/t"),
        make_context(SETTINGS),
    )
    assert probe.calls[0]["api_token"] == "s3cr3t"  # the action itself gets the value
    row = executor.ledger.get(outcome.key)
    assert row is not None and "s3cr3t" not in repr(row) and "s3cr3t" not in repr(outcome.timeline)
    assert row.params["token_file"] == "/run/secrets/t"


def test_unknown_kind_and_bad_step_are_named(tmp_path):
    executor, _, _ = build(tmp_path)
    outcome = executor.run_step(StepSpec.from_mapping({"action": "reboot"}, 2), make_context(SETTINGS))
    assert outcome.state == "failed" and "unknown action kind 'reboot'" in (outcome.error or "")
    with pytest.raises(ActionParamError, match="retries"):
        StepSpec.from_mapping({"action": "probe", "retries": -1}, 0)
    with pytest.raises(ActionParamError, match="'action'"):
        StepSpec.from_mapping({"weight": 5}, 0)
    with pytest.raises(ActionParamError, match="timeout"):
        StepSpec.from_mapping({"action": "probe", "timeout": "soon"}, 0)
    assert StepSpec.from_mapping({"action": "probe", "weight": 5}, 3).id == "probe-3"


def test_dry_run_records_what_would_run_and_a_later_real_run_supersedes_it(tmp_path):
    probe = Probe()
    executor, _, _ = build(tmp_path, probe)
    ctx = make_context(SETTINGS)
    dry = executor.run_step(step(weight="{{ 25 * 2 }}"), ctx, dry_run=True)
    assert dry.state == "dry_run" and probe.calls == []
    assert dry.timeline[0]["event"] == "dry_run" and dry.timeline[0]["params"] == {"weight": "50"}
    assert executor.ledger.get(dry.key).state == "dry_run"  # type: ignore[union-attr]
    again = executor.run_step(step(weight="{{ 25 * 2 }}"), ctx, dry_run=True)
    assert again.duplicate and probe.calls == []
    real = executor.run_step(step(weight="{{ 25 * 2 }}"), ctx)
    assert real.state == "succeeded" and len(probe.calls) == 1


def test_global_and_per_step_dry_run(tmp_path):
    probe = Probe()
    executor, _, _ = build(tmp_path, probe, settings=ActionSettings(dry_run=True))
    assert executor.run_step(step(), make_context(SETTINGS)).state == "dry_run"
    (tmp_path / "b").mkdir()
    executor2, _, _ = build(tmp_path / "b", probe)
    assert executor2.run_step(step(dry_run=True), make_context(SETTINGS)).state == "dry_run"
    assert probe.calls == []


def test_a_runbooks_cooldown_in_the_context_overrides_the_executors(tmp_path):
    """The responder narrows the context's settings to the runbook's ``cooldown``; the guard must use them."""
    from dataclasses import replace

    executor, _, clock = build(tmp_path, Probe())  # executor default: 600 s
    short = replace(SETTINGS, cooldown_seconds=60)
    assert executor.run_step(step(), make_context(short, incident_id="A")).state == "succeeded"
    clock.advance(120)
    assert executor.run_step(step(), make_context(short, incident_id="B")).state == "succeeded"

    (tmp_path / "long").mkdir()
    executor, _, clock = build(tmp_path / "long", Probe(), settings=replace(SETTINGS, cooldown_seconds=0))
    long = replace(SETTINGS, cooldown_seconds=3600)
    assert executor.run_step(step(), make_context(long, incident_id="A")).state == "succeeded"
    clock.advance(1800)
    held = executor.run_step(step(), make_context(long, incident_id="B"))
    assert held.state == "skipped" and held.summary.startswith("cooldown:")


def test_cooldown_skips_a_second_incident_on_the_same_model_and_asks_for_escalation(tmp_path):
    probe, note = Probe(), Probe("note", containment=False)
    executor, _, clock = build(tmp_path, probe, note)
    assert executor.run_step(step(), make_context(SETTINGS, incident_id="A")).state == "succeeded"
    clock.advance(120)
    blocked = executor.run_step(step(), make_context(SETTINGS, incident_id="B"))
    assert blocked.state == "skipped" and blocked.summary.startswith("cooldown:")
    assert "incident A" in blocked.summary and blocked.escalate
    assert blocked.timeline[0]["reason"] == "cooldown"
    # comms are not containments: never held back by the cooldown
    notify = executor.run_step(
        StepSpec.from_mapping({"action": "note"}, 1), make_context(SETTINGS, incident_id="B")
    )
    assert notify.state == "succeeded"
    # another model is unaffected; a human (automatic=False) is never held back
    assert (
        executor.run_step(step(), make_context(SETTINGS, incident_id="C", model="ranker")).state
        == "succeeded"
    )
    manual = executor.run_step(step(id="manual"), make_context(SETTINGS, incident_id="B"), automatic=False)
    assert manual.state == "succeeded"
    clock.advance(600)
    assert executor.run_step(step(), make_context(SETTINGS, incident_id="D")).state == "succeeded"
    assert len(probe.calls) == 4


def test_further_steps_of_an_admitted_incident_are_not_cooled_down(tmp_path):
    probe = Probe()
    executor, _, clock = build(tmp_path, probe)
    ctx = make_context(SETTINGS, incident_id="A")
    executor.run_step(step(id="split"), ctx)
    clock.advance(60)
    assert executor.run_step(step(id="guardrail"), ctx).state == "succeeded"


def test_flap_guard_stops_acting_after_n_containments_in_an_hour(tmp_path):
    probe = Probe()
    settings = ActionSettings(cooldown_seconds=0, flap_max=2, flap_window_seconds=3600)
    executor, _, clock = build(tmp_path, probe, settings=settings)
    for incident in ("A", "B"):
        assert executor.run_step(step(), make_context(settings, incident_id=incident)).state == "succeeded"
        clock.advance(300)
    third = executor.run_step(step(), make_context(settings, incident_id="C"))
    assert third.state == "skipped" and third.summary.startswith("flap_guard:") and third.escalate
    assert "2 automatic containments" in third.summary
    clock.advance(3600)
    assert executor.run_step(step(), make_context(settings, incident_id="D")).state == "succeeded"
    assert len(probe.calls) == 3


def test_recover_undoes_containments_with_their_recorded_result(tmp_path):
    probe = Probe()
    executor, _, _ = build(tmp_path, probe)
    ctx = make_context(SETTINGS)
    executor.run_step(step(id="one"), ctx)
    done = executor.recover(ctx)
    assert [o.state for o in done] == ["succeeded"] and probe.recovered == [{"n": 1, "params": {}}]
    assert executor.recover(ctx)[0].duplicate  # recovery is exactly-once too
    nothing = executor.run_step(step(id="other"), make_context(SETTINGS, incident_id="Z"), phase="recover")
    assert nothing.state == "skipped" and "nothing to recover" in nothing.summary


def test_timeline_entries_also_go_to_the_callback(tmp_path):
    seen: list[dict[str, Any]] = []
    executor, _, _ = build(tmp_path, on_timeline=seen.append)
    outcome = executor.run_step(step(), make_context(SETTINGS))
    assert seen == outcome.timeline
    assert all(e["incident_id"] == "INC-1" and e["action"] == "probe" for e in seen)


def _stranded(executor: ActionExecutor, clock: Clock, kind: str, *, started: bool) -> LedgerKey:
    """Leave a row the way a crashed process would: claimed (and maybe running) with a lease."""
    key = LedgerKey("INC-9", "contain", f"{kind}-0", kind)
    claim = executor.ledger.claim(
        key,
        model="fraud",
        runbook_id="rb",
        params={},
        owner="dead-process",
        now=clock(),
        lease_until=clock() + 60,
        containment=True,
        automatic=True,
        dry_run=False,
        guard=None,
    )
    if started:
        executor.ledger.start(claim.row.id, snapshot={}, now=clock(), lease_until=clock() + 60)
    return key


def test_restart_rule(tmp_path):
    once, again, fresh = Probe("once"), Probe("again", idempotent=True), Probe("fresh")
    executor, _, clock = build(tmp_path, once, again, fresh)
    k_once = _stranded(executor, clock, "once", started=True)
    k_again = _stranded(executor, clock, "again", started=True)
    k_fresh = _stranded(executor, clock, "fresh", started=False)
    assert (
        executor.resume_interrupted(lambda row: make_context(SETTINGS, incident_id=row.key.incident_id)) == []
    )
    clock.advance(61)  # leases expire: their owner is gone
    outcomes = {
        o.key.kind: o
        for o in executor.resume_interrupted(
            lambda row: make_context(SETTINGS, incident_id=row.key.incident_id)
        )
    }
    assert outcomes["once"].state == "interrupted" and outcomes["once"].escalate and once.calls == []
    assert outcomes["again"].state == "succeeded" and outcomes["again"].data == {"reconciled": True}
    assert outcomes["again"].timeline[-1]["event"] == "reconciled"
    assert outcomes["fresh"].state == "succeeded" and len(fresh.calls) == 1
    states = {k.kind: executor.ledger.get(k).state for k in (k_once, k_again, k_fresh)}  # type: ignore[union-attr]
    assert states == {"once": "interrupted", "again": "succeeded", "fresh": "succeeded"}
    assert executor.resume_interrupted(lambda row: make_context(SETTINGS)) == []


def test_a_human_can_run_a_step_the_cooldown_held_back(tmp_path):
    probe = Probe()
    executor, _, clock = build(tmp_path, probe)
    executor.run_step(step(), make_context(SETTINGS, incident_id="A"))
    clock.advance(60)
    held = executor.run_step(step(), make_context(SETTINGS, incident_id="B"))
    assert held.state == "skipped" and len(probe.calls) == 1
    assert executor.run_step(
        step(), make_context(SETTINGS, incident_id="B")
    ).duplicate  # automatic: still held
    by_hand = executor.run_step(step(), make_context(SETTINGS, incident_id="B"), automatic=False)
    assert by_hand.state == "succeeded" and not by_hand.duplicate and len(probe.calls) == 2
    assert executor.ledger.get(by_hand.key).automatic is False  # type: ignore[union-attr]


def test_flap_max_zero_disables_the_flap_guard(tmp_path):
    probe = Probe()
    settings = ActionSettings(cooldown_seconds=0, flap_max=0)
    executor, _, clock = build(tmp_path, probe, settings=settings)
    for incident in "ABCDEF":
        assert executor.run_step(step(), make_context(settings, incident_id=incident)).state == "succeeded"
        clock.advance(1)


def test_recover_without_steps_visits_only_recoverable_kinds(tmp_path):
    probe, note = Probe(), Probe("note", containment=False)
    executor, _, _ = build(tmp_path, probe, note)
    ctx = make_context(SETTINGS)
    executor.run_steps([step(id="c"), StepSpec.from_mapping({"action": "note"}, 1)], ctx)
    assert [o.key.kind for o in executor.recover(ctx)] == ["probe"]
