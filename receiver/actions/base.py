"""What every action kind shares: its context, its result, the protocol it implements, and small helpers.

An action kind is a class with a ``kind`` name and two flags the executor relies on:

* ``containment`` - it changes how a model serves (registry writes); cooldown and the flap guard apply.
* ``idempotent`` - after a crash mid-run it can look at the current state and finish safely
  (see :meth:`Action.reconcile`); non-idempotent kinds are recorded as ``interrupted`` instead.
* ``recoverable`` - recovery has something to say or undo for it (``ActionExecutor.recover`` without
  explicit steps visits only these kinds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import requests

from receiver.durations import parse_prometheus_duration
from receiver.errors import ActionParamError
from receiver.templating import render

__all__ = [
    "Action",
    "ActionContext",
    "ActionResult",
    "ActionSettings",
    "BaseAction",
    "Notifier",
    "ResultState",
    "parse_duration",
    "render_params",
    "require_model",
]

ResultState = Literal["succeeded", "skipped", "refused"]

#: ``notifier(incident_id, channel, payload, dedupe_key)`` - the comms outbox's enqueue.
Notifier = Callable[[str, str, dict[str, Any], str], Any]


@dataclass(frozen=True)
class ActionSettings:
    """Deployment settings for actions (from the receiver config; no secrets inline, only file paths)."""

    registry_path: str | None = None  # a SQLite file, or mlflow+http(s)://host:port
    registry_token_file: str | None = None  # MLflow bearer token (else $MLFLOW_TRACKING_TOKEN)
    alertmanager_url: str | None = None
    http_allow_list: tuple[str, ...] = ()
    pager_url: str | None = None
    pager_routing_key_file: str | None = None
    dry_run: bool = False
    actor: str = "receiver"
    cooldown_seconds: float = 600.0
    flap_max: int = 3
    flap_window_seconds: float = 3600.0
    default_timeout: float = 10.0
    default_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    silence_max_seconds: float = 24 * 3600.0
    public_url: str | None = None  # the console's base URL: pages link to <public_url>/incidents/<id>

    def routing_key(self) -> str:
        """Read the pager routing key from its file at call time (so rotation needs no restart)."""
        if not self.pager_routing_key_file:
            raise ActionParamError("page: settings.pager_routing_key_file is not set")
        try:
            key = Path(self.pager_routing_key_file).read_text().strip()
        except OSError as exc:
            raise ActionParamError(
                f"page: cannot read pager routing key file {self.pager_routing_key_file}: {exc.strerror}"
            ) from exc
        if not key:
            raise ActionParamError(f"page: pager routing key file {self.pager_routing_key_file} is empty")
        return key


@dataclass(frozen=True)
class ActionContext:
    """Everything an action may look at. Built once per incident; the executor narrows it per step.

    ``session`` is the HTTP transport seam; ``registry`` may be injected (otherwise it is opened from
    ``settings.registry_path``); ``notifier`` is the comms outbox's ``enqueue``.
    """

    incident_id: str
    model: str
    settings: ActionSettings
    runbook_id: str = ""
    step_id: str = ""
    phase: str = "contain"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    severity: str = ""
    value: float | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    incident_key: str = ""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    session: requests.Session | None = None
    notifier: Notifier | None = None
    registry: Any = None
    timeout: float = 10.0

    def narrow(self, **changes: Any) -> ActionContext:
        return replace(self, **changes)

    def template_context(self) -> dict[str, Any]:
        """The names runbook templates and ``when`` expressions see. Labels are values, never templates."""
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "level": self.severity,
            "facts": dict(self.facts),
            "incident": {
                "id": self.incident_id,
                "key": self.incident_key or self.incident_id,
                "runbook": self.runbook_id,
                "model": self.model,
            },
            "model": self.model,
        }

    def http(self) -> requests.Session:
        if self.session is None:
            raise ActionParamError("no HTTP session was given to the action context")
        return self.session

    def open_registry(self) -> Any:
        """The injected registry, or ``model_registry.open_registry(settings.registry_path)``."""
        if self.registry is not None:
            return self.registry
        if not self.settings.registry_path:
            raise ActionParamError("settings.registry_path is not set and no registry was injected")
        from model_registry import open_registry  # imported lazily: the registry is optional for comms

        return open_registry(
            self.settings.registry_path, token_file=self.settings.registry_token_file, timeout=self.timeout
        )


@dataclass(frozen=True)
class ActionResult:
    """What one run returned. ``data`` is JSON-serialisable and kept in the ledger (recovery reads it)."""

    state: ResultState = "succeeded"
    summary: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    escalate: str | None = None

    @classmethod
    def refused(cls, reason: str, **data: Any) -> ActionResult:
        """A deliberate refusal: nothing was changed, humans are asked to decide."""
        return cls("refused", reason, dict(data), escalate=reason)

    @classmethod
    def skipped(cls, reason: str, **data: Any) -> ActionResult:
        return cls("skipped", reason, dict(data))


@runtime_checkable
class Action(Protocol):
    kind: str
    containment: bool
    idempotent: bool
    recoverable: bool

    def render(self, params: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        """Render templated parameters in the sandbox (labels are data); see :func:`render_params`."""

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return normalised params or raise :class:`ActionParamError` naming the parameter."""

    def snapshot(self, params: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
        """Cheap read of the state before running, stored in the ledger (used by :meth:`reconcile`)."""

    def run(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult: ...

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        """After a crash mid-run: finish (return a result) or ``None`` if the outcome cannot be known."""

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        """Undo a successful containment; ``prior`` is the containment's recorded ``data``."""


class BaseAction:
    """Defaults: not a containment, not idempotent, no snapshot, nothing to recover."""

    kind = ""
    containment = False
    idempotent = False
    recoverable = False

    def render(self, params: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        rendered: dict[str, Any] = render_params(dict(params), context)
        return rendered

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def snapshot(self, params: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
        return {}

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        raise NotImplementedError

    def reconcile(
        self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]
    ) -> ActionResult | None:
        return None

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        return ActionResult.skipped(f"{self.kind}: nothing to recover")


def parse_duration(value: Any, name: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"1h30m"``; raises ActionParamError naming ``name``."""
    if isinstance(value, bool):
        raise ActionParamError(f"{name}: expected a duration like '30m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            seconds = parse_prometheus_duration(value)
        except ValueError:
            expected = "a duration like '30m' or '1h30m'"
            raise ActionParamError(f"{name}: expected {expected}, got {value!r}") from None
    else:
        raise ActionParamError(f"{name}: expected a duration like '30m', got {value!r}")
    if seconds <= 0:
        raise ActionParamError(f"{name}: must be positive, got {value!r}")
    return seconds


def require_model(ctx: ActionContext, kind: str) -> str:
    if not ctx.model:
        raise ActionParamError(f"{kind}: the incident has no model label; cannot act on the registry")
    return ctx.model


def render_params(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string leaf that contains Jinja markup. Values substituted from labels are inserted
    as text and never rendered again, so a label holding ``{{ ... }}`` arrives literally."""
    if isinstance(value, str):
        return render(value, context) if ("{{" in value or "{%" in value) else value
    if isinstance(value, Mapping):
        return {k: render_params(v, context) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render_params(v, context) for v in value]
    return value
