"""Pure helpers of the action kinds, the registry of kinds against the schemas, and every shipped runbook step
rendered and validated by its executor (in dry-run, on a real ledger file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from receiver.actions.base import ActionSettings, parse_duration
from receiver.actions.executor import StepSpec, redact
from receiver.actions.http import url_allowed
from receiver.actions.kinds import ACTION_KINDS, STEP_RESERVED_KEYS
from receiver.actions.registry import ActionRegistry, default_registry
from receiver.actions.silence import parse_matcher
from receiver.errors import ActionParamError
from tests.support.action_fixtures import make_context, make_executor

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("bad", ["", "soon", "5 m", "1h-2m", -5, 0, True, None, "m30"])
def test_parse_duration_rejects_with_the_name(bad):
    with pytest.raises(ActionParamError, match="silence: duration"):
        parse_duration(bad, "silence: duration")


def test_parse_matcher_operators_and_quoting():
    assert parse_matcher('model="fraud"') == {
        "name": "model",
        "value": "fraud",
        "isRegex": False,
        "isEqual": True,
    }
    assert parse_matcher('team!="a,b"')["isEqual"] is False
    assert parse_matcher('type=~"drift|auc"') == {
        "name": "type",
        "value": "drift|auc",
        "isRegex": True,
        "isEqual": True,
    }
    assert parse_matcher("x!~y") == {"name": "x", "value": "y", "isRegex": True, "isEqual": False}
    # the runbooks' grammar: escapes are unescaped, single quotes are refused, no ':' in names
    assert parse_matcher('model="a\\"b"')["value"] == 'a"b'
    for bad in ["model", "=x", '1bad="x"', 'model=a,b="c"', "type=~'drift|auc'", 'a:b="x"']:
        with pytest.raises(ActionParamError, match="matcher"):
            parse_matcher(bad)


def test_url_allow_list_is_segment_and_host_exact():
    allow = ["https://flags.internal/api", "http://127.0.0.1:8080/"]
    assert url_allowed("https://flags.internal/api", allow)
    assert url_allowed("https://flags.internal/api/v1/flags?x=1", allow)
    assert url_allowed("http://127.0.0.1:8080/anything", allow)
    for bad in [
        "https://flags.internal/apix",
        "http://flags.internal/api/x",
        "https://flags.internal.evil/api/x",
        "https://user@flags.internal/api/x",
        "http://127.0.0.1:8081/x",
        "ftp://flags.internal/api",
        "https:///api",
    ]:
        assert not url_allowed(bad, allow), bad
    assert not url_allowed("https://flags.internal/api", [])


def test_redact_masks_secret_keys_but_not_file_paths():
    assert redact({"token": "t", "nested": [{"Authorization": "b"}], "token_file": "/p", "weight": 5}) == {
        "token": "***",
        "nested": [{"Authorization": "***"}],
        "token_file": "/p",
        "weight": 5,
    }


def test_every_schema_kind_has_an_executor_and_back():
    assert default_registry().kinds() == sorted(ACTION_KINDS)
    with pytest.raises(ActionParamError, match="unknown action kind 'nope'"):
        default_registry().get("nope")
    with pytest.raises(ValueError, match="already registered"):
        ActionRegistry([*(default_registry().get(k) for k in ("http", "http"))])


def test_executor_reserved_step_keys_match_the_schema_module():
    raw: dict[str, object] = {key: None for key in STEP_RESERVED_KEYS}
    raw |= {"action": "http", "id": "s", "url": "http://x"}
    raw.update(when="true", dry_run=False, timeout="5s", retries=1)
    assert StepSpec.from_mapping(raw, 0).params == {"url": "http://x"}


def _shipped_steps() -> list[tuple[str, str, int, dict[str, Any]]]:
    found = []
    for path in sorted((REPO / "runbooks").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for phase in ("contain", "recover"):
            for index, raw in enumerate(doc.get(phase) or []):
                found.append((path.stem, phase, index, raw))
    return found


def test_every_shipped_runbook_step_renders_and_validates(tmp_path):
    steps = _shipped_steps()
    if not steps:
        pytest.skip("no shipped runbooks yet")
    settings = ActionSettings(dry_run=True)
    executor = make_executor(tmp_path / "ledger.db", settings)
    labels = {"model": "fraud", "team": "risk", "incident_type": "drift", "feature": "amount"}
    problems, states = [], []
    for runbook, phase, index, raw in [s for s in steps if s[1] == "contain"] + [
        s for s in steps if s[1] == "recover"
    ]:
        ctx = make_context(settings, incident_id=runbook, severity="SEV1", labels=labels)
        outcome = executor.run_step(StepSpec.from_mapping(raw, index), ctx, phase=phase)
        states.append(outcome.state)
        if outcome.state != "dry_run" or outcome.error:
            problems.append(f"{runbook} {phase}[{index}]: {outcome.state} {outcome.summary} {outcome.error}")
    assert problems == []  # at SEV1 every condition holds, and every recovery finds its containment
    assert len(states) == len(steps)
