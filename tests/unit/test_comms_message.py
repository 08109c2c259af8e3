"""StatusUpdate: validation, JSON round trip (for the timeline), dedupe keys, next update wording."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from receiver.comms.message import ActionSummary, Links, ModelVersions, StatusUpdate
from receiver.evidence import EvidenceSnapshot


def test_round_trip_through_json() -> None:
    update = StatusUpdate(
        incident_id="7",
        event="contained",
        severity="SEV1",
        state="contained",
        title="Toxic output",
        model=ModelVersions("chat", "v9", "v8", None),
        impact="some replies unsafe",
        actions=(ActionSummary("guardrail", "succeeded", "level 2 -> 3", "2024-05-01T10:00:00Z"),),
        evidence=(
            EvidenceSnapshot(
                "toxic ratio", "q", "2024-05-01T10:00:00+00:00", "%", [], None, "evidence unavailable: x"
            ),
        ),
        owners={"comms": "safety-comms"},
        next_update_at=datetime(2024, 5, 1, 11, 0, tzinfo=UTC),
        links=Links(generator="http://prom/graph?g0"),
        labels={"a": "b"},
        sequence=3,
    )
    restored = StatusUpdate.from_json(json.loads(json.dumps(update.to_json())))
    assert restored == update


def test_rejects_unknown_event() -> None:
    with pytest.raises(ValueError, match="unknown status update event 'paged'"):
        StatusUpdate("1", "paged", "SEV3", "open", "t", ModelVersions("m"))


def test_dedupe_key_distinguishes_sequence_channel_and_audience() -> None:
    a = StatusUpdate("1", "update", "SEV3", "open", "t", ModelVersions("m"), sequence=1)
    b = StatusUpdate("1", "update", "SEV3", "open", "t", ModelVersions("m"), sequence=2)
    keys = {
        a.dedupe_key("slack", "oncall"),
        b.dedupe_key("slack", "oncall"),
        a.dedupe_key("teams", "oncall"),
        a.dedupe_key("slack", "stakeholder"),
    }
    assert len(keys) == 4
    assert a.dedupe_key("slack", "oncall") == a.dedupe_key("slack", "oncall")


def test_next_update_text() -> None:
    base = dict(incident_id="1", severity="SEV3", state="open", title="t", model=ModelVersions("m"))
    assert StatusUpdate(event="resolved", **base).next_update_text == "no further scheduled update"  # type: ignore[arg-type]
    assert StatusUpdate(event="opened", **base).next_update_text == "when something changes"  # type: ignore[arg-type]
