"""A runbook is typed at load time: steps, evidence, verify, escalate, comms; defaults as the schema says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from receiver.runbooks import load_runbooks
from receiver.runbooks.model import Runbook
from receiver.runbooks.sections import Comms, Duration, Verify

REPO = Path(__file__).resolve().parents[2]

FULL = """\
id: full
title: Everything set
match: ['incident_type="drift"']
impact: 'Predictions of {{ labels.model }} may be off.'
cooldown: 1h
dry_run: true
links: {runbook_url: 'https://wiki/drift'}
contain:
  - {id: split, action: traffic_split, to: last_known_good, weight: 50}
  - {action: notify, channel: ops}
recover:
  - {action: traffic_split}
evidence:
  - {name: max PSI, query: 'max(model_feature_psi)', unit: ratio}
verify: {query: 'max(model_feature_psi) < 0.2', for: 10m, timeout: 45m}
escalate: {after: 20m, to: ml-senior, page: true, upgrade_to: SEV1}
comms: {channels: [ops, stakeholders], cadence: 15m}
"""

BARE = """\
id: bare
title: Only what is required
match: ['incident_type="drift"']
verify: {query: 'max(model_feature_psi) < 0.2'}
comms: {channels: [ops]}
"""


def _load(tmp_path: Path, text: str) -> Runbook:
    (tmp_path / "runbook.yml").write_text(text, encoding="utf-8")
    (runbook,) = load_runbooks(tmp_path)
    return runbook


def test_every_section_is_typed(tmp_path: Path) -> None:
    runbook = _load(tmp_path, FULL)
    assert [(s.id, s.kind) for s in runbook.contain] == [("split", "traffic_split"), ("notify-1", "notify")]
    assert runbook.contain[0].params == {"to": "last_known_good", "weight": 50}
    assert [s.kind for s in runbook.recover] == ["traffic_split"]
    evidence = [(e.name, e.query, e.unit) for e in runbook.evidence]
    assert evidence == [("max PSI", "max(model_feature_psi)", "ratio")]
    expected = Verify("max(model_feature_psi) < 0.2", Duration("10m", 600.0), Duration("45m", 2700.0))
    assert runbook.verify == expected
    assert runbook.escalate is not None
    assert (runbook.escalate.after.seconds, runbook.escalate.to) == (1200.0, "ml-senior")
    assert runbook.escalate.page is True and runbook.escalate.upgrade_to == "SEV1"
    assert runbook.comms == Comms(("ops", "stakeholders"), Duration("15m", 900.0))
    assert runbook.cooldown == Duration("1h", 3600.0)
    assert runbook.dry_run is True
    assert runbook.impact == "Predictions of {{ labels.model }} may be off."
    assert runbook.links == {"runbook_url": "https://wiki/drift"}


def test_unset_sections_take_the_schema_defaults(tmp_path: Path) -> None:
    runbook = _load(tmp_path, BARE)
    schema = json.loads((REPO / "runbooks/runbook.schema.json").read_text())["properties"]
    assert runbook.verify is not None and runbook.comms is not None
    # what runbook authors read in the schema is what the responder does
    assert runbook.verify.for_.text == schema["verify"]["properties"]["for"]["default"] == "5m"
    assert runbook.verify.for_.seconds == 300.0
    assert runbook.verify.timeout.text == schema["verify"]["properties"]["timeout"]["default"] == "30m"
    assert runbook.comms.cadence.text == schema["comms"]["properties"]["cadence"]["default"] == "30m"
    assert runbook.comms.cadence.seconds == 1800.0
    assert (runbook.contain, runbook.recover, runbook.evidence) == ((), (), ())
    assert runbook.escalate is None and runbook.cooldown is None and runbook.impact is None
    assert runbook.dry_run is False and runbook.links == {}


def test_a_bad_duration_is_refused_with_its_text() -> None:
    with pytest.raises(ValueError, match="'5 minutes' is not a duration"):
        Duration.parse("5 minutes")


def test_shipped_runbooks_are_all_typed() -> None:
    runbooks = list(load_runbooks(REPO / "runbooks"))
    assert runbooks
    for runbook in runbooks:
        assert runbook.verify is not None and runbook.verify.for_.seconds > 0, runbook.id
        assert runbook.escalate is not None and runbook.comms is not None, runbook.id
