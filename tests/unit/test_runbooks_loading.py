"""Loading runbook files: every kind of mistake is reported with exact file, line and field path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from receiver.errors import RunbookError
from receiver.runbooks import Problem, lint_runbooks, load_runbooks

VALID = """\
id: feature-drift
title: Feature drift
match: ['incident_type="drift"']
severity:
  - {when: 'value >= 0.2', level: SEV2}
  - {level: SEV3}
contain:
  - action: traffic_split
    to: last_known_good
    weight: 50
    when: 'level in ["SEV1", "SEV2"]'
recover:
  - {action: traffic_split}
evidence:
  - {name: max PSI, query: 'max(model_feature_psi{model="{{ labels.model }}"})'}
verify: {query: 'max(model_feature_psi) < 0.2', for: 5m, timeout: 30m}
escalate: {after: 30m, to: ml-senior}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def only_problem(directory: Path) -> Problem:
    problems = lint_runbooks(directory)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_valid_runbook_loads_with_defaults(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID)
    runbooks = load_runbooks(tmp_path)
    assert len(runbooks) == 1
    runbook = runbooks.get("feature-drift")
    assert runbook.source == tmp_path / "drift.yml"
    assert runbook.group_by == ["model"]
    assert runbook.priority == 0
    assert runbook.owners == {}
    assert runbook.document["dry_run"] is False
    assert runbook.document["contain"][0]["weight"] == 50
    assert lint_runbooks(tmp_path) == []


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID.replace("title: Feature drift", "title: [Feature drift"))
    problem = only_problem(tmp_path)
    assert problem.file == str(tmp_path / "drift.yml")
    assert problem.field == "<yaml>"
    assert problem.line == 3
    assert "YAML syntax error" in problem.message


def test_schema_type_error(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID.replace("    weight: 50", "    weight: fifty"))
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (10, "contain[0].weight")
    assert problem.message == "'fifty' is not of type 'integer'"


def test_bad_action_param_matches_the_documented_format(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID.replace("    weight: 50", "    weight: 150"))
    problem = only_problem(tmp_path)
    expected = f"{tmp_path / 'drift.yml'}:10: contain[0].weight: 150 is greater than the maximum of 100"
    assert str(problem) == expected


def test_bad_matcher(tmp_path: Path) -> None:
    bad = """match:\n  - 'model="churn"'\n  - 'incident_type=="drift"'"""
    write(tmp_path, "drift.yml", VALID.replace("""match: ['incident_type="drift"']""", bad))
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (5, "match[1]")
    assert "unbalanced double quote" in problem.message


def test_bad_severity_expression(tmp_path: Path) -> None:
    write(
        tmp_path,
        "drift.yml",
        VALID.replace("{when: 'value >= 0.2', level: SEV2}", "{when: 'value >= ', level: SEV2}"),
    )
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (5, "severity[0].when")
    assert "invalid expression" in problem.message


def test_severity_expression_using_level_is_rejected(tmp_path: Path) -> None:
    write(
        tmp_path,
        "drift.yml",
        VALID.replace("{when: 'value >= 0.2', level: SEV2}", "{when: 'level == \"SEV1\"', level: SEV2}"),
    )
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (5, "severity[0].when")
    assert "unknown name(s) level" in problem.message


def test_unknown_action_kind(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID.replace("  - action: traffic_split", "  - action: trafic_split"))
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (8, "contain[0].action")
    assert "unknown action kind 'trafic_split'; did you mean 'traffic_split'?" in problem.message


def test_unknown_step_param_and_missing_required_param(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID.replace("    weight: 50\n", "    wieght: 50\n"))
    problems = lint_runbooks(tmp_path)
    assert [(p.line, p.field) for p in problems] == [(8, "contain[0].weight"), (10, "contain[0].wieght")]
    assert problems[0].message == "required field is missing"
    assert problems[1].message == "unknown field 'wieght'; did you mean 'weight'?"


def test_reserved_step_keys_are_not_params(tmp_path: Path) -> None:
    write(
        tmp_path,
        "drift.yml",
        VALID.replace(
            "    weight: 50\n",
            "    weight: 50\n    id: split\n    timeout: 10s\n    retries: 2\n    dry_run: true\n",
        ),
    )
    assert lint_runbooks(tmp_path) == []


def test_step_timeout_must_be_a_duration(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID.replace("    weight: 50\n", "    weight: 50\n    timeout: soon\n"))
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (11, "contain[0].timeout")
    assert "Prometheus-style duration" in problem.message


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", VALID)
    write(tmp_path, "b.yml", "# another\n" + VALID)
    problem = only_problem(tmp_path)
    assert (problem.file, problem.line, problem.field) == (str(tmp_path / "b.yml"), 2, "id")
    assert problem.message == f"duplicate runbook id 'feature-drift' (also in {tmp_path / 'a.yml'}:1)"


def test_bad_duration_and_unknown_top_level_field(tmp_path: Path) -> None:
    text = VALID.replace("for: 5m", "for: 5 minutes") + "escalation: {after: 30m}\n"
    write(tmp_path, "drift.yml", text)
    problems = lint_runbooks(tmp_path)
    assert [(p.line, p.field) for p in problems] == [(16, "verify.for"), (18, "escalation")]
    assert problems[0].message == "'5 minutes' is not a Prometheus-style duration such as 30s, 5m, 1h30m"
    assert problems[1].message == "unknown field 'escalation'; did you mean 'escalate'?"


def test_missing_required_fields_and_bad_slug(tmp_path: Path) -> None:
    write(tmp_path, "x.yml", "id: Feature_Drift\nmatch: []\n")
    problems = {(p.line, p.field): p.message for p in lint_runbooks(tmp_path)}
    assert problems[(1, "id")].startswith("'Feature_Drift' is not lowercase letters")
    assert problems[(1, "title")] == "required field is missing"
    assert problems[(2, "match")] == "[] should be non-empty"


def test_reachable_rows_and_blank_promql_and_verify_window(tmp_path: Path) -> None:
    text = VALID.replace("  - {when: 'value >= 0.2', level: SEV2}", "  - {level: SEV2}").replace(
        "query: 'max(model_feature_psi) < 0.2', for: 5m, timeout: 30m", "query: '   ', for: 1h, timeout: 30m"
    )
    write(tmp_path, "drift.yml", text)
    problems = {(p.line, p.field): p.message for p in lint_runbooks(tmp_path)}
    assert "rows after it are unreachable" in problems[(5, "severity[0]")]
    assert problems[(16, "verify.query")] == "PromQL query is blank"
    assert "verification can never pass" in problems[(16, "verify.timeout")]


def test_template_syntax_error_in_evidence_and_owner_names(tmp_path: Path) -> None:
    text = (
        VALID.replace("{{ labels.model }}", "{{ labels.model }") + "owners: {ml_owner: '{{ lables.team }}'}\n"
    )
    write(tmp_path, "drift.yml", text)
    problems = {(p.line, p.field): p.message for p in lint_runbooks(tmp_path)}
    assert "invalid template" in problems[(15, "evidence[0].query")]
    assert "unknown name(s) lables" in problems[(18, "owners.ml_owner")]


def test_duplicate_yaml_key_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "drift.yml", VALID + "title: Another title\n")
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (18, "title")
    assert problem.message == "duplicate key 'title' (first at line 2)"


def test_recover_params_optional_but_typed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "drift.yml",
        VALID.replace("  - {action: traffic_split}", "  - {action: traffic_split, weight: 0}"),
    )
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (13, "recover[0].weight")
    assert problem.message == "0 is less than the minimum of 1"


def test_guardrail_level_and_page_target(tmp_path: Path) -> None:
    text = VALID.replace(
        "recover:\n  - {action: traffic_split}",
        "recover:\n  - {action: guardrail, level: high}\n  - {action: page, event: trigger}",
    )
    write(tmp_path, "drift.yml", text)
    problems = {(p.line, p.field): p.message for p in lint_runbooks(tmp_path)}
    assert problems[(13, "recover[0].level")].startswith("'high' is not valid: Moderation level 0-3")
    assert (14, "recover[1]") not in problems  # recover params are optional (undo semantics)
    write(
        tmp_path, "drift.yml", VALID.replace("contain:\n", "contain:\n  - {action: page, event: trigger}\n")
    )
    problems = {(p.line, p.field): p.message for p in lint_runbooks(tmp_path)}
    assert problems[(8, "contain[0]")] == "one of 'routing_key_file', 'service' is required"


def test_reserved_unmatched_id(tmp_path: Path) -> None:
    write(tmp_path, "u.yml", VALID.replace("id: feature-drift", "id: unmatched"))
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (1, "id")
    assert "reserved" in problem.message


def test_empty_file_not_a_mapping_and_empty_directory(tmp_path: Path) -> None:
    write(tmp_path, "empty.yml", "")
    write(tmp_path, "list.yaml", "- id: x\n")
    problems = lint_runbooks(tmp_path)
    assert [(Path(p.file).name, p.line, p.field) for p in problems] == [
        ("empty.yml", 1, "<root>"),
        ("list.yaml", 1, "<root>"),
    ]
    assert "empty" in problems[0].message
    assert "is not of type 'object'" in problems[1].message
    empty_dir = tmp_path / "none"
    empty_dir.mkdir()
    assert "no runbooks" in lint_runbooks(empty_dir)[0].message
    assert "is not a directory" in lint_runbooks(tmp_path / "missing")[0].message


def test_load_raises_with_every_problem_and_lint_finds_all(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", VALID.replace("    weight: 50", "    weight: 150"))
    write(
        tmp_path,
        "b.yml",
        VALID.replace("id: feature-drift", "id: other").replace("level: SEV3", "level: SEV9"),
    )
    write(tmp_path, "c.yml", VALID.replace("id: feature-drift", "id: fine"))
    with pytest.raises(RunbookError) as caught:
        load_runbooks(tmp_path)
    problems = caught.value.problems
    assert [Path(p.file).name for p in problems] == ["a.yml", "b.yml"]
    assert problems == lint_runbooks(tmp_path)
    assert "2 problem(s)" in caught.value.message
    expected = "b.yml:6: severity[1].level: 'SEV9' is not one of ['SEV1', 'SEV2', 'SEV3']"
    assert str(problems[1]).endswith(expected)


def test_other_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "drift.yaml", VALID)
    write(tmp_path, "README.md", "# not a runbook: {{{")
    write(tmp_path, "runbook.schema.json", "{}")
    assert len(load_runbooks(tmp_path)) == 1


def test_anchors_in_extension_fields_and_merge_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        "drift.yml",
        """\
        id: anchors
        title: Anchors
        match: ['incident_type="drift"']
        x-split: &split {action: traffic_split, to: last_known_good}
        contain:
          - <<: *split
            weight: 500
          - <<: *split
            weight: 50
        """,
    )
    problem = only_problem(tmp_path)
    assert (problem.line, problem.field) == (7, "contain[0].weight")
    write(tmp_path, "drift.yml", (tmp_path / "drift.yml").read_text().replace("500", "25"))
    runbook = load_runbooks(tmp_path).get("anchors")
    assert [s["weight"] for s in runbook.document["contain"]] == [25, 50]
    assert runbook.document["contain"][0]["action"] == "traffic_split"
