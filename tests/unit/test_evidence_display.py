"""How evidence reads in a status update: values, several series, no data, and Prometheus's non-numbers."""

from __future__ import annotations

from receiver.evidence import EvidenceSnapshot


def snapshot(*samples: dict[str, object], unit: str | None = "ratio") -> EvidenceSnapshot:
    return EvidenceSnapshot(
        "error ratio by version", "q", "2026-11-25T20:00:00+00:00", unit, [dict(s) for s in samples]
    )


def test_a_version_without_traffic_reads_as_nothing_in_the_window_not_nan() -> None:
    shown = snapshot(
        {"labels": {"version": "v1"}, "value": "NaN", "timestamp": 1.0},
        {"labels": {"version": "v2"}, "value": 0.54171, "timestamp": 1.0},
    ).display()
    assert shown == '{version="v1"} n/a (nothing in the window), {version="v2"} 0.5417 (54.17%)'
    assert "NaN" not in shown


def test_non_numbers_as_floats_and_infinities_are_spelled_out() -> None:
    assert snapshot({"labels": {}, "value": float("nan")}).display() == "n/a (nothing in the window)"
    assert snapshot({"labels": {}, "value": "+Inf"}).display() == "+Inf (divided by 0)"
    assert snapshot({"labels": {}, "value": float("-inf")}).display() == "-Inf (divided by 0)"


def test_plain_values_more_than_five_series_and_no_data() -> None:
    assert snapshot({"labels": {}, "value": 0.31274}, unit="%").display() == "0.3127%"
    many = snapshot(*({"labels": {"f": str(i)}, "value": i} for i in range(7)), unit=None).display()
    assert many.endswith("(+2 more)") and many.startswith('{f="0"} 0, {f="1"} 1')
    assert snapshot().display() == "no data"
    error = EvidenceSnapshot("x", "q", "t", error="evidence unavailable: connection refused")
    assert error.display() == "evidence unavailable: connection refused"
