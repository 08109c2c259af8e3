"""Runbooks as objects: matching, precedence, incident keys and severity.

Precedence when several runbooks match one alert (deterministic): the higher ``priority`` wins, then the
runbook with more matchers (more specific), then the runbook id in alphabetical order. When none matches,
the built-in ``unmatched`` runbook takes the alert so nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from receiver.actions.steps import StepSpec
from receiver.errors import NotFound, TemplateError
from receiver.runbooks.matchers import Matcher, parse_matcher
from receiver.runbooks.sections import Comms, Duration, Escalate, EvidenceQuery, Verify
from receiver.runbooks.severity import SeverityContext, SeverityDecision, SeverityRow, decide, label_data
from receiver.templating import render

__all__ = ["UNMATCHED_RUNBOOK_ID", "Runbook", "RunbookSet", "unmatched_runbook"]

UNMATCHED_RUNBOOK_ID = "unmatched"

#: Top-level defaults filled into ``Runbook.document`` so consumers need not repeat them.
_DOCUMENT_DEFAULTS: dict[str, Any] = {
    "priority": 0,
    "group_by": ["model"],
    "owners": {},
    "contain": [],
    "recover": [],
    "evidence": [],
    "dry_run": False,
    "links": {},
}


@dataclass(frozen=True, eq=False)
class Runbook:
    """A validated runbook, typed: what the responder, status updates and the console read.

    ``document`` keeps the YAML as written (with top-level defaults), for the API and the review page.
    """

    id: str
    title: str
    source: Path | None
    matchers: list[Matcher]
    priority: int
    group_by: list[str]
    owners: dict[str, str]
    severity: tuple[SeverityRow, ...]
    document: dict[str, Any] = field(repr=False)
    contain: tuple[StepSpec, ...] = ()
    #: empty: recovery undoes every containment
    recover: tuple[StepSpec, ...] = ()
    evidence: tuple[EvidenceQuery, ...] = ()
    verify: Verify | None = None
    escalate: Escalate | None = None
    #: None: the runbook posts no status updates
    comms: Comms | None = None
    dry_run: bool = False
    cooldown: Duration | None = None
    impact: str | None = None
    links: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: Path | None = None) -> Runbook:
        """Build from a *validated* document (see :func:`receiver.runbooks.load_runbooks`)."""
        doc: dict[str, Any] = json.loads(json.dumps(document))  # deep, plain copy
        for key, default in _DOCUMENT_DEFAULTS.items():
            doc.setdefault(key, json.loads(json.dumps(default)))
        rows = tuple(
            SeverityRow(level=row["level"], when=row.get("when"))
            for row in doc.get("severity") or [{"level": "SEV3"}]
        )
        return cls(
            id=doc["id"],
            title=doc.get("title", doc["id"]),
            source=source,
            matchers=[parse_matcher(m) for m in doc.get("match", [])],
            priority=int(doc["priority"]),
            group_by=list(doc["group_by"]),
            owners=dict(doc["owners"]),
            severity=rows,
            document=doc,
            contain=tuple(StepSpec.from_mapping(step, i) for i, step in enumerate(doc["contain"])),
            recover=tuple(StepSpec.from_mapping(step, i) for i, step in enumerate(doc["recover"])),
            evidence=tuple(EvidenceQuery.from_mapping(item) for item in doc["evidence"]),
            verify=Verify.from_mapping(doc["verify"]) if doc.get("verify") else None,
            escalate=Escalate.from_mapping(doc["escalate"]) if doc.get("escalate") else None,
            comms=Comms.from_mapping(doc["comms"]) if doc.get("comms") else None,
            dry_run=bool(doc["dry_run"]),
            cooldown=Duration.parse(doc["cooldown"]) if doc.get("cooldown") else None,
            impact=str(doc["impact"]) if doc.get("impact") else None,
            links={str(k): str(v) for k, v in doc["links"].items()},
        )

    @property
    def precedence_key(self) -> tuple[int, int, str]:
        return (-self.priority, -len(self.matchers), self.id)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return bool(self.matchers) and all(m.matches(labels) for m in self.matchers)

    def incident_key(self, labels: Mapping[str, str]) -> str:
        """``<id>|<canonical JSON of the group_by label values>``; a missing label is ``""``."""
        values = {name: str(labels.get(name, "")) for name in self.group_by}
        return f"{self.id}|{json.dumps(values, sort_keys=True, separators=(',', ':'), ensure_ascii=False)}"

    def decide_severity(self, ctx: SeverityContext) -> str:
        return self.decide_severity_with_trace(ctx).level

    def decide_severity_with_trace(self, ctx: SeverityContext) -> SeverityDecision:
        """The level plus the rows whose expressions failed (to record on the incident timeline)."""
        return decide(self.severity, ctx)

    def render_owners(self, labels: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """Owner roles with their templates rendered over ``labels``.

        A template that fails keeps its raw text (never blanks a role) and its error is returned.
        A missing label reads as ``""``, so ``{{ labels.team or "ml-models" }}`` gives a fallback.
        """
        rendered: dict[str, str] = {}
        errors: list[str] = []
        variables = {"labels": label_data(labels)}
        for role, template in self.owners.items():
            try:
                rendered[role] = render(template, variables)
            except TemplateError as exc:
                rendered[role] = template
                errors.append(f"owners.{role}: {exc.message}")
        return rendered, errors


def unmatched_runbook() -> Runbook:
    """The built-in fallback: SEV2 for ``severity="page"`` alerts, else SEV3; no actions."""
    return Runbook.from_document(
        {
            "id": UNMATCHED_RUNBOOK_ID,
            "title": "Alert without a runbook",
            "description": "Built in: no runbook matched this alert. Triage by hand and write a runbook.",
            "match": [],
            "group_by": ["alertname", "model"],
            "severity": [{"when": 'labels.severity == "page"', "level": "SEV2"}, {"level": "SEV3"}],
        }
    )


class RunbookSet:
    """Loaded runbooks in precedence order, plus the built-in ``unmatched`` runbook."""

    def __init__(self, runbooks: Iterable[Runbook]) -> None:
        self._runbooks = sorted(runbooks, key=lambda rb: rb.precedence_key)
        self._unmatched = unmatched_runbook()
        self._by_id = {rb.id: rb for rb in self._runbooks}
        if len(self._by_id) != len(self._runbooks):
            raise ValueError("duplicate runbook ids")
        if UNMATCHED_RUNBOOK_ID in self._by_id:
            raise ValueError(f"runbook id {UNMATCHED_RUNBOOK_ID!r} is reserved")

    @property
    def runbooks(self) -> list[Runbook]:
        return list(self._runbooks)

    @property
    def unmatched(self) -> Runbook:
        return self._unmatched

    def match(self, labels: Mapping[str, str]) -> Runbook:
        """The winning runbook for these labels, or the built-in ``unmatched`` one; never None."""
        for runbook in self._runbooks:
            if runbook.matches(labels):
                return runbook
        return self._unmatched

    def match_all(self, labels: Mapping[str, str]) -> list[Runbook]:
        """Every matching runbook, winner first (to explain a decision)."""
        return [rb for rb in self._runbooks if rb.matches(labels)]

    def get(self, runbook_id: str) -> Runbook:
        if runbook_id == UNMATCHED_RUNBOOK_ID:
            return self._unmatched
        try:
            return self._by_id[runbook_id]
        except KeyError:
            raise NotFound(f"no runbook with id {runbook_id!r}") from None

    def __contains__(self, runbook_id: object) -> bool:
        return runbook_id == UNMATCHED_RUNBOOK_ID or runbook_id in self._by_id

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self._runbooks)

    def __len__(self) -> int:
        return len(self._runbooks)
