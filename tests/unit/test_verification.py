"""The verification state machine: pass, fail and time-out rules, and its JSON round trip."""

from __future__ import annotations

import json

import pytest

from receiver.verification import Unknown, VerificationState


def test_passes_after_condition_holds_for_the_whole_duration() -> None:
    state = VerificationState.start(100.0, for_s=30, timeout_s=300)
    state = state.observe(110, True)
    assert state.status == "pending" and state.true_since == 110
    state = state.observe(130, True)
    assert state.status == "pending" and "20s of the required 30s" in state.reason
    state = state.observe(140, True)
    assert state.status == "passed" and state.finished_at == 140
    assert state.observe(150, False) is state  # terminal


def test_false_or_unknown_breaks_the_streak() -> None:
    state = VerificationState.start(0, for_s=30, timeout_s=300)
    state = state.observe(10, True).observe(30, False)
    assert state.true_since is None and state.reason == "condition is false"
    state = state.observe(35, True).observe(50, Unknown("prometheus down")).observe(60, True)
    assert state.true_since == 60
    assert state.observe(85, True).status == "pending"
    assert state.observe(90, True).status == "passed"


def test_zero_for_passes_on_first_true() -> None:
    assert VerificationState.start(0, 0, 10).observe(1, True).status == "passed"


def test_false_at_deadline_fails() -> None:
    state = VerificationState.start(0, for_s=10, timeout_s=60).observe(30, False)
    assert state.observe(59, False).status == "pending"
    failed = state.observe(60, False)
    assert failed.status == "failed" and "still false at the 60s deadline" in failed.reason


def test_unknown_at_deadline_times_out_with_reason() -> None:
    state = VerificationState.start(0, for_s=10, timeout_s=60).observe(61, Unknown("cannot connect"))
    assert state.status == "timed_out"
    assert "could not evaluate: cannot connect" in state.reason


def test_true_but_not_long_enough_times_out() -> None:
    state = VerificationState.start(0, for_s=30, timeout_s=60).observe(45, True)
    # 45 + 30 is past the deadline: this streak cannot complete in time.
    out = state.observe(65, True)
    assert out.status == "timed_out" and "true for 20s" in out.reason


def test_late_observation_of_a_streak_completed_before_the_deadline_passes() -> None:
    state = VerificationState.start(0, for_s=10, timeout_s=60).observe(40, True)
    assert state.observe(70, True).status == "passed"


def test_tick_without_observation() -> None:
    state = VerificationState.start(0, 5, 20)
    assert state.tick(19) is state
    out = state.tick(20)
    assert out.status == "timed_out" and "never checked" in out.reason


def test_json_round_trip_resumes_identically() -> None:
    state = VerificationState.start(0, 30, 300).observe(10, True)
    restored = VerificationState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    assert restored.observe(40, True).status == "passed"


def test_invalid_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="longer than its timeout"):
        VerificationState.start(0, 600, 60)
    with pytest.raises(ValueError, match="timeout > 0"):
        VerificationState.start(0, 0, 0)
    with pytest.raises(ValueError, match="unknown verification status 'bogus'"):
        VerificationState.from_json({"started_at": 0, "for_s": 1, "timeout_s": 2, "status": "bogus"})
    with pytest.raises(ValueError, match="missing 'for_s'"):
        VerificationState.from_json({"started_at": 0, "timeout_s": 2})
