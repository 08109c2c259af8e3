"""Every shipped runbook's evidence units agree with the metric contract (issue 14: the traffic weight, a
ratio 0..1, was shown with unit "%", so a full weight read "1%")."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from receiver.evidence import EvidenceSnapshot, contract_unit

RUNBOOKS = sorted((Path(__file__).resolve().parents[2] / "runbooks").glob("*.yml"))
EVIDENCE = [
    pytest.param(spec, id=f"{path.stem}: {spec['name']}")
    for path in RUNBOOKS
    for spec in (yaml.safe_load(path.read_text()).get("evidence") or [])
]


def test_the_shipped_runbooks_have_evidence() -> None:
    assert len(EVIDENCE) >= 20


@pytest.mark.parametrize("spec", EVIDENCE)
def test_evidence_unit_matches_the_metric_contract(spec: dict[str, str]) -> None:
    assert spec.get("unit") == contract_unit(spec["query"])


def test_contract_units_of_typical_queries() -> None:
    assert contract_unit('max by (version) (model_traffic_weight{model="m"})') == "ratio"
    assert contract_unit('sum(rate(model_requests_total{model="m"}[5m]))') == "req/s"
    assert contract_unit('sum(rate(model_outputs_total{model="m"}[5m]))') == "outputs/s"
    assert (
        contract_unit(
            "histogram_quantile(0.95, sum by (le) (rate(model_request_duration_seconds_bucket{}[5m])))"
        )
        == "s"
    )
    with pytest.raises(ValueError):
        contract_unit("vector(1)")


def test_a_full_weight_reads_as_100_percent_not_1_percent() -> None:
    full = EvidenceSnapshot("w", "q", "t", "ratio", [{"labels": {}, "value": 1.0}])
    assert full.display() == "1 (100%)"
