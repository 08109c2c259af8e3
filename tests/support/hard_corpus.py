"""The harder backtest corpus: 24 h of six models where the shipped rules must be fast and quiet at once.

``hard_scenario(end=...)`` lays out (30 s resolution, as production history is usually kept):

* quiet nights on every model (4 h at the start, 4 h at the end) where every ratio alert's inputs are
  noisy: a handful of requests with a few errors, slow requests (cold caches), null inputs, toxic outputs;
  AUC and PSI from few samples;
* an LLM (``assistant``) at 0.2-1 outputs/s by day, 0.25 at night (1 % toxic: a 15m window of ~225
  outputs often holds 5 toxic ones, over 2 %): toxicity waves at high and low volume,
  an upstream outage, a latency regression, a one-minute toxic blip;
* slow burns at 2x, 4x and 8x the error budget (one model each, hours long: the ticket tier);
* delayed labels with gaps: ``churn`` gets no labels for 2 h, then an AUC drop that the online AUC shows
  only 10 minutes after it starts (the label delay);
* a retrain with a new baseline, a subtle prediction shift (0.58 sd), a release that is fine and two
  that are not, each until it is rolled back: one fails 20 % of requests, one scores 1 sd off its own
  baseline (a corrupt artifact);
* blips shorter than the rules' ``for:`` of every kind and a 45 s scrape failure.

Every labelled incident must be detected (recall 1.0), no page may fire outside an incident, and the
median detection delay must stay at or under 7 minutes (``tests/integration/test_backtest_hard.py``).
"""

from __future__ import annotations

import math

from tests.support.scenarios import Event, ModelSpec, Scenario

__all__ = ["hard_scenario"]

#: night noise per model kind: true rates that a ratio over a handful of events overshoots
_NIGHT = {"rps": 0.12, "error_p": 0.03, "slow_p": 0.05, "null_p": 0.05, "toxic_p": 0.01}
_LLM_NIGHT = {**_NIGHT, "rps": 0.25, "toxic_p": 0.01}


def hard_scenario(end: float, *, step: float = 30.0, seed: int = 11) -> Scenario:
    """The corpus of the module docstring, ending at ``end`` (aligned down to a whole minute)."""
    end = math.floor(end / 60) * 60
    start = end - 24 * 3600

    def at(minute: float, length: float) -> tuple[float, float]:
        return start + minute * 60, start + (minute + length) * 60

    fraud = ModelSpec("fraud", base_rps=6.0)
    churn = ModelSpec("churn", base_rps=2.0, slo_error_ratio=0.005, features=("f1", "f2"), score_mean=0.3)
    assistant = ModelSpec(
        "assistant",
        base_rps=1.0,
        diurnal=0.4,
        slo_latency_seconds=2.5,
        latency_median=0.8,
        features=("prompt_len",),
        score_mean=0.4,
    )
    burns = [ModelSpec(f"burn{k}x", base_rps=3.0, features=("f1",), diurnal=0.1) for k in (2, 4, 8)]
    models = [fraud, churn, assistant, *burns]
    events: list[Event] = []
    for spec in models:
        night = _LLM_NIGHT if spec is assistant else _NIGHT
        events.append(Event("night", spec.name, *at(0, 240), dict(night)))
        events.append(Event("night", spec.name, *at(1200, 240), dict(night)))
    events += [
        # fraud: one of each serving and quality incident, a retrain, a bad and a fine release
        Event("error_blip", "fraud", *at(300, 1)),
        Event("error_burst", "fraud", *at(330, 30)),
        Event("latency_blip", "fraud", *at(400, 2)),
        Event("latency_spike", "fraud", *at(430, 30)),
        Event("psi_blip", "fraud", *at(500, 3), {"feature": "f1"}),
        Event("psi_drift", "fraud", *at(530, 45), {"feature": "f2"}),
        Event(
            "retrain", "fraud", *at(620, 2000), {"version": "v2", "score_mean": 0.45, "auc_baseline": 0.88}
        ),
        Event("prediction_shift", "fraud", *at(680, 40), {"score_mean": 0.85}),
        Event("bad_release", "fraud", *at(800, 20), {"version": "v3", "error_p": 0.2}),
        Event("release", "fraud", *at(900, 2000), {"version": "v4"}),
        Event("null_blip", "fraud", *at(960, 1), {"feature": "f3"}),
        # churn: delayed labels with a gap, data quality, availability, a subtle shift, a fine release
        Event("label_gap", "churn", *at(300, 120)),
        Event("auc_drop", "churn", *at(480, 90), {"label_delay_min": 10, "drop": 0.12}),
        Event("null_blip", "churn", *at(600, 1), {"feature": "f1"}),
        Event("null_burst", "churn", *at(640, 25), {"feature": "f1"}),
        Event("target_flap", "churn", *at(720, 0.75)),
        Event("target_down", "churn", *at(760, 15)),
        Event("prediction_shift", "churn", *at(850, 40), {"score_mean": 0.38}),
        Event("release", "churn", *at(950, 2000), {"version": "v2"}),
        Event("error_blip", "churn", *at(1000, 1)),
        # a release whose scores are off its own baseline (a corrupt artifact), rolled back after 20 min
        Event("bad_release_scores", "churn", *at(1150, 20), {"version": "v3", "live_score_mean": 0.45}),
        # assistant: an LLM at 0.2-1 outputs/s
        Event("toxicity_blip", "assistant", *at(300, 1)),
        Event("toxicity_burst", "assistant", *at(400, 30), {"toxic_p": 0.08}),
        Event("error_burst", "assistant", *at(700, 30), {"error_p": 0.4}),
        Event("toxicity_burst", "assistant", *at(1000, 30), {"toxic_p": 0.08}),
        Event("latency_spike", "assistant", *at(1100, 30), {"median": 5.0}),
        # slow burns, hours long, one model each
        Event("slow_burn", "burn2x", *at(360, 840), {"factor": 2}),
        Event("slow_burn", "burn4x", *at(360, 540), {"factor": 4}),
        Event("slow_burn", "burn8x", *at(400, 300), {"factor": 8}),
    ]
    return Scenario(start=start, end=end, models=models, events=events, step=step, seed=seed)
