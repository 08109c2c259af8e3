"""The for:/keep_firing_for state machine, checked against Prometheus 2.42's AlertingRule.Eval semantics."""

from __future__ import annotations

from receiver.backtest.engine import Episode, apply_for_semantics

A = (("model", "a"),)
B = (("model", "b"),)
TIMES = [float(t) for t in range(0, 600, 60)]  # evaluations every minute: 0, 60, ..., 540


def run(present: dict, for_s: float, kff: float = 0.0) -> list[Episode]:
    return apply_for_semantics(TIMES, present, for_s, kff)


def test_fires_once_true_for_the_whole_for_duration():
    [episode] = run({A: [120, 180, 240, 300]}, for_s=120)
    assert episode.active_at == 120
    assert episode.fired_at == 240  # 240 - 120 >= 120: exactly at the threshold fires
    assert episode.resolved_at == 360


def test_pending_only_when_shorter_than_for():
    [episode] = run({A: [120, 180]}, for_s=120)
    assert (episode.active_at, episode.fired_at, episode.resolved_at) == (120, None, 240)
    assert not episode.fired


def test_a_gap_resets_pending():
    episodes = run({A: [0, 60, 180, 240, 300]}, for_s=120)
    assert [(e.active_at, e.fired_at, e.resolved_at) for e in episodes] == [(0, None, 120), (180, 300, 360)]


def test_for_zero_fires_on_first_evaluation_and_still_active_at_end():
    [episode] = run({A: [480, 540]}, for_s=0)
    assert (episode.active_at, episode.fired_at, episode.resolved_at) == (480, 480, None)


def test_label_sets_are_independent():
    episodes = run({A: [0, 60, 120], B: [60, 120, 180, 240]}, for_s=120)
    by_model = {dict(e.labels)["model"]: e for e in episodes}
    assert by_model["a"].fired_at == 120 and by_model["a"].resolved_at == 180
    assert by_model["b"].fired_at == 180 and by_model["b"].resolved_at == 300


def test_keep_firing_for_holds_a_firing_alert_through_a_gap():
    # fires at 60; missing from 180 on; keep_firing_for 120s: still firing at 180 and 240, resolved at 300
    [episode] = run({A: [0, 60, 120]}, for_s=60, kff=120)
    assert (episode.fired_at, episode.resolved_at) == (60, 300)


def test_keep_firing_for_countdown_resets_when_the_alert_returns():
    [episode] = run({A: [0, 60, 120, 240, 300]}, for_s=60, kff=120)
    # missing at 180 only (kept), back at 240: one continuous episode resolved 120 s after 360
    assert (episode.fired_at, episode.resolved_at) == (60, 480)


def test_keep_firing_for_does_not_hold_a_pending_alert():
    [episode] = run({A: [0, 60]}, for_s=300, kff=600)
    assert (episode.fired_at, episode.resolved_at) == (None, 120)


def test_presence_at_times_that_are_not_evaluations_is_ignored():
    assert run({A: [30, 90]}, for_s=0) == []
