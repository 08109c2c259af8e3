"""The one matcher grammar means what a real Alertmanager means (0.25 and 0.28, through its silences API).

Each matcher becomes a silence exactly as the ``silence`` action sends it (:meth:`Matcher.to_api`); alerts
with awkward label values (quotes, backslashes, newlines, missing labels, non-ASCII) are posted, and
Alertmanager's own ``silencedBy`` for each alert must equal what :meth:`Matcher.matches` says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from receiver.matchers import Matcher, MatcherError, parse_matcher
from tests.support.realparts import RunningProcess, wait_until

AM_CONFIG = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}

MATCHERS = [
    'model="churn"',
    "model = churn",
    'model!="churn"',
    'model=~"churn|fraud"',
    'model=~"churn"',  # anchored: not churn-v2
    'model!~"ch.*"',
    'model="a\\"b"',  # the value a"b (the old silence parser sent a\"b)
    'model="a\\\\b"',  # the value a\b
    'model=~"a\\\\\\\\b"',  # the regex a\\b, i.e. a literal backslash
    'model="line1\\nline2"',
    'model=~"line1.line2"',  # Go: . does not match a newline
    'model=~"(?s:line1.line2)"',
    'model=~"é.*"',
    'team=""',  # absent label = empty value
    'team!~".+"',
    'team=~".*"',
    'team!=""',
    "model=~.+",
    'model=~"[a-c]+"',
    'model=~"x{2,3}"',
]

VALUES: list[dict[str, str]] = [
    {"model": "churn"},
    {"model": "churn-v2"},
    {"model": "fraud"},
    {"model": 'a"b'},
    {"model": "a\\b"},
    {"model": 'a\\"b'},
    {"model": "line1\nline2"},
    {"model": "éclair"},
    {"model": "abc", "team": "ml"},
    {"model": "xx", "team": ""},
    {"model": "xxxx"},
    {},
]


def _post_silence(am: RunningProcess, matchers: list[dict[str, Any]]) -> requests.Response:
    now = datetime.now(UTC)
    return requests.post(
        am.url + "/api/v2/silences",
        json={
            "matchers": matchers,
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test",
            "comment": "grammar check",
        },
        timeout=5,
    )


@pytest.fixture
def alertmanager(alertmanager_factory: Any) -> RunningProcess:
    am: RunningProcess = alertmanager_factory(AM_CONFIG)
    return am


def test_silencing_agrees_with_matcher_semantics(alertmanager: RunningProcess) -> None:
    parsed = [parse_matcher(text) for text in MATCHERS]
    # alertname=~".+" matches every posted alert; it only satisfies "one matcher must not match empty"
    scope = {"name": "alertname", "value": ".+", "isRegex": True, "isEqual": True}
    silence_of: dict[str, Matcher] = {}
    for matcher in parsed:
        answer = _post_silence(alertmanager, [matcher.to_api(), scope])
        assert answer.status_code == 200, (str(matcher), answer.text)
        silence_of[answer.json()["silenceID"]] = matcher
        stored = requests.get(f"{alertmanager.url}/api/v2/silence/{answer.json()['silenceID']}", timeout=5)
        assert matcher.to_api() in stored.json()["matchers"]  # the value arrived unchanged
    alerts = [{"labels": {"alertname": f"probe{i}", **labels}} for i, labels in enumerate(VALUES)]
    requests.post(alertmanager.url + "/api/v2/alerts", json=alerts, timeout=5).raise_for_status()

    def settled() -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = requests.get(alertmanager.url + "/api/v2/alerts", timeout=5).json()
        return (
            got
            if len(got) == len(alerts) and all(a["status"]["state"] != "unprocessed" for a in got)
            else None
        )

    got = wait_until(settled, timeout=15, message="Alertmanager to process the alerts")
    disagreements = []
    for alert in got:
        labels = alert["labels"]
        theirs = {str(silence_of[s]) for s in alert["status"]["silencedBy"]}
        ours = {str(m) for m in parsed if m.matches(labels)}
        if theirs != ours:
            disagreements.append((labels, sorted(theirs ^ ours)))
    assert disagreements == []


@pytest.mark.parametrize(
    ("text", "api_name"),
    [('a:b="x"', "a:b"), ('1a="x"', "1a")],
)
def test_names_alertmanager_refuses_are_refused_by_the_grammar(
    alertmanager: RunningProcess, real_parts: Any, text: str, api_name: str
) -> None:
    with pytest.raises(MatcherError, match="not a label name"):
        parse_matcher(text)
    answer = _post_silence(
        alertmanager, [{"name": api_name, "value": "x", "isRegex": False, "isEqual": True}]
    )
    # 0.25 refuses them; 0.28 takes any UTF-8 name: the grammar keeps to the names both versions take
    assert answer.status_code == (400 if real_parts.name == "bookworm" else 200), answer.text


def test_alertmanager_refuses_what_the_action_refuses(alertmanager: RunningProcess) -> None:
    only_empty = parse_matcher('team=~".*"')
    assert only_empty.matches({})
    answer = _post_silence(alertmanager, [only_empty.to_api()])
    assert answer.status_code == 400  # and the silence action refuses it before calling (unit tests)
