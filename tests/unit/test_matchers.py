"""Alertmanager matcher syntax and semantics (anchoring, missing labels, escapes, unquoted values)."""

from __future__ import annotations

import pytest

from receiver.runbooks import Matcher, MatcherError, parse_matcher


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('incident_type="drift"', "incident_type", "=", "drift"),
        ('severity!="ticket"', "severity", "!=", "ticket"),
        ('model=~"churn|fraud"', "model", "=~", "churn|fraud"),
        ('team!~"ml-.*"', "team", "!~", "ml-.*"),
        ("  model = churn  ", "model", "=", "churn"),  # unquoted, spaces trimmed
        ("alertname=~Model.*", "alertname", "=~", "Model.*"),  # unquoted regex
        ('summary="say \\"hi\\""', "summary", "=", 'say "hi"'),  # escaped quotes
        ('path="a\\\\b"', "path", "=", "a\\b"),  # escaped backslash
        ('text="line1\\nline2"', "text", "=", "line1\nline2"),  # \n escape
        ('version=~"v\\\\d+"', "version", "=~", "v\\d+"),  # a backslash for the regex, escaped
        ('empty=""', "empty", "=", ""),
    ],
)
def test_parse(text: str, name: str, op: str, value: str) -> None:
    matcher = parse_matcher(text)
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("incident_type", "is not a matcher"),
        ('="drift"', "is not a matcher"),
        ('1abc="x"', "is not a label name"),
        ('model:x="y"', "no ':'"),
        ("model='x'", "double quotes"),
        ("model=`x`", "double quotes"),
        ("model=", "value is missing"),
        ("model=a,b", "may not contain ','"),
        ('version=~"v\\d+"', "unknown escape"),
        ('text="a\nb"', "newline inside"),
        ('model=="x"', "unbalanced double quote"),
        ('model="abc', "unbalanced double quote"),
        ('model="a"b"', "unescaped double quote"),
        ('model=~"(unclosed"', "invalid regular expression"),
        ('model="trailing\\"', "not closed"),
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(MatcherError, match=fragment.replace("(", r"\(")):
        parse_matcher(text)


def test_not_a_string() -> None:
    with pytest.raises(MatcherError, match="must be a string"):
        parse_matcher(42)  # type: ignore[arg-type]


def test_equality_and_inequality() -> None:
    assert parse_matcher('model="churn"').matches({"model": "churn"})
    assert not parse_matcher('model="churn"').matches({"model": "churn2"})
    assert parse_matcher('model!="churn"').matches({"model": "fraud"})
    assert not parse_matcher('model!="churn"').matches({"model": "churn"})


def test_regex_is_fully_anchored() -> None:
    matcher = parse_matcher('model=~"churn"')
    assert matcher.matches({"model": "churn"})
    assert not matcher.matches({"model": "churn-v2"})
    assert not matcher.matches({"model": "old-churn"})
    alternation = parse_matcher('incident_type=~"errors|latency"')
    assert alternation.matches({"incident_type": "latency"})
    # ^(?:errors|latency)$, not ^errors|latency$
    assert not alternation.matches({"incident_type": "errors_x"})


def test_missing_label_is_the_empty_string() -> None:
    assert parse_matcher('team=""').matches({})
    assert not parse_matcher('team!=""').matches({})
    assert parse_matcher('team!~".+"').matches({})  # absent label: !~ on a non-empty regex matches
    assert not parse_matcher('team!~".*"').matches({})  # ".*" matches the empty value
    assert parse_matcher('team=~".*"').matches({})
    assert not parse_matcher('team=~".+"').matches({})
    assert parse_matcher('team!="ml"').matches({})


def test_regex_dot_does_not_match_newline_like_go() -> None:
    # Alertmanager 0.25 and 0.28 both leave an alert with text="a\nb" unsilenced by text=~"a.b"
    assert not parse_matcher('text=~"a.b"').matches({"text": "a\nb"})
    assert parse_matcher('text=~"a.b"').matches({"text": "axb"})
    assert parse_matcher('text=~"(?s:a.b)"').matches({"text": "a\nb"})


def test_str_round_trips_with_escapes() -> None:
    for text in ('summary="say \\"hi\\""', 'path=~"a\\\\.b"', 'model!="x"', 'model!~"a|b"'):
        matcher = parse_matcher(text)
        again = parse_matcher(str(matcher))
        assert (again.name, again.op, again.value) == (matcher.name, matcher.op, matcher.value)
    assert str(parse_matcher("model = churn")) == 'model="churn"'


def test_matcher_equality_ignores_compiled_regex() -> None:
    assert parse_matcher('a=~"x"') == parse_matcher('a =~ "x"')
    assert isinstance(parse_matcher('a="x"'), Matcher)
