"""The one matcher grammar: printing then parsing gives the same matcher; any text parses or is a clear
MatcherError (never another exception); a parsed text prints to a canonical form that parses the same."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.matchers import Matcher, MatcherError, format_matcher, make_matcher, parse_matcher

BOUNDED = settings(max_examples=300, deadline=None)
names = st.from_regex(r"\A[a-zA-Z_][a-zA-Z0-9_]{0,15}\Z")
values = st.text(max_size=30)
regexes = st.sampled_from([".*", ".+", "a|b", "[a-z]+", "x{2,3}", "(churn|fraud)-v[0-9]+", r"a\.b", "é"])


@st.composite
def matchers(draw: st.DrawFn) -> Matcher:
    op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    value = draw(regexes) if op in ("=~", "!~") else draw(values)
    return make_matcher(draw(names), op, value)


@BOUNDED
@given(matchers())
def test_print_parse_round_trip(matcher: Matcher) -> None:
    again = parse_matcher(format_matcher(matcher))
    assert again == matcher
    assert str(again) == str(matcher)


@BOUNDED
@given(matchers(), st.dictionaries(names, values, max_size=3))
def test_the_printed_form_matches_the_same_labels(matcher: Matcher, labels: dict[str, str]) -> None:
    assert parse_matcher(str(matcher)).matches(labels) == matcher.matches(labels)


@BOUNDED
@given(
    st.text(max_size=40)
    | st.builds(
        lambda n, o, v: f"{n}{o}{v}",
        names,
        st.sampled_from(["=", "!=", "=~", "!~", "=="]),
        st.text(max_size=20),
    )
)
def test_any_text_parses_or_is_a_clear_error(text: str) -> None:
    try:
        matcher = parse_matcher(text)
    except MatcherError as exc:
        assert repr(text) in str(exc) or "not a matcher" in str(exc)
        return
    assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", matcher.name)
    assert parse_matcher(str(matcher)) == matcher  # canonical form


@BOUNDED
@given(matchers())
def test_api_form_is_what_alertmanager_reads(matcher: Matcher) -> None:
    api = matcher.to_api()
    assert api["name"] == matcher.name and api["value"] == matcher.value
    assert api["isRegex"] == (matcher.op in ("=~", "!~")) and api["isEqual"] == (matcher.op in ("=", "=~"))
