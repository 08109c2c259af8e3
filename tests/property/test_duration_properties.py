"""Durations: any combination of Prometheus units parses to its sum; any other text is a ValueError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.durations import parse_prometheus_duration
from receiver.runbooks.durations import parse_duration

UNITS = [
    ("y", 365 * 86400.0),
    ("w", 7 * 86400.0),
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
]
BOUNDED = settings(max_examples=300, deadline=None)


@BOUNDED
@given(st.lists(st.integers(0, 10_000) | st.none(), min_size=len(UNITS), max_size=len(UNITS)))
def test_units_in_order_sum(counts: list[int | None]) -> None:
    parts = [(n, unit, seconds) for n, (unit, seconds) in zip(counts, UNITS, strict=True) if n is not None]
    if not parts:
        return
    text = "".join(f"{n}{unit}" for n, unit, _ in parts)
    expected = sum(n * seconds for n, _, seconds in parts)
    assert math.isclose(parse_prometheus_duration(text), expected, rel_tol=1e-12, abs_tol=1e-9)


@BOUNDED
@given(st.text(max_size=12))
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    for parse in (parse_prometheus_duration, parse_duration):
        try:
            seconds = parse(text)
        except ValueError as exc:
            assert repr(text.strip()) in str(exc) or repr(text) in str(exc)
        else:
            assert seconds >= 0 and math.isfinite(seconds)


@BOUNDED
@given(st.sampled_from(UNITS), st.sampled_from(UNITS))
def test_units_out_of_order_are_refused(first: tuple[str, float], second: tuple[str, float]) -> None:
    if UNITS.index(first) < UNITS.index(second):
        return
    with pytest.raises(ValueError):
        parse_prometheus_duration(f"1{first[0]}1{second[0]}")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=400 * 86_400_000))
def test_format_then_parse_is_the_identity_in_whole_milliseconds(millis: int) -> None:
    from receiver.durations import format_duration

    text = format_duration(millis / 1000)
    assert parse_prometheus_duration(text) == pytest.approx(millis / 1000, abs=1e-9)
    assert "w" not in text and "y" not in text  # days at most, as rule files spell them


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0s"), (0.0004, "0s"), (0.0005, "0s"), (0.0015, "2ms"), (90, "1m30s"), (86_400 * 8, "8d")],
)
def test_format_duration_edges(seconds: float, text: str) -> None:
    from receiver.durations import format_duration

    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_format_duration_refuses_what_has_no_spelling(seconds: float) -> None:
    from receiver.durations import format_duration

    with pytest.raises(ValueError, match="duration must"):
        format_duration(seconds)
