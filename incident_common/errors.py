"""One exception tree for the receiver, the model registry and the model server, and one JSON error shape
for every HTTP error response. It lives here, outside all three, because ``model_registry`` and
``model_server`` must not import the receiver; :mod:`receiver.errors` re-exports it for the receiver.

::

    ReceiverError
    ├── ConfigError            settings invalid at start (names the setting and what was expected)
    ├── PayloadError           a webhook body that is not a valid Alertmanager v4 notification
    ├── RunbookError           runbooks that fail to load or validate (carries every problem)
    ├── TemplateError          a Jinja expression/template that fails in the sandbox
    ├── StoreError             the durable store cannot read or commit
    │   └── StoreUnavailable   cannot commit right now (the webhook answers 503 so Alertmanager retries)
    ├── NotFound               an incident, notification or other record does not exist
    ├── ActionError            a containment/comms action failed (see receiver.actions)
    │   └── DeliveryError      a channel could not deliver a message (``retryable`` says whether to retry)
    └── PrometheusError        the Prometheus HTTP API could not answer a query (see receiver.prom)
        ├── PrometheusUnavailable  unreachable, timed out, or 5xx (try later)
        └── PrometheusQueryError   the query itself was rejected or the answer was malformed
    DrillError (a ReceiverError) the native drill stack could not start or run
    BacktestError (a ReceiverError) bad backtest input: time range, rule file (names file and rule), incidents
    RegistryError (a ReceiverError) model_registry refused a request as asked; nothing changed (400)
    ├── NoHealthyFallbackError   rollback/split with no healthy version to go to (409)
    ├── ConflictError            the state is not what the caller expected, or a duplicate (409)
    │   └── WriteConflictError   another writer got in between (optimistic backends); nothing was
    │                            written, retrying re-reads and is safe
    ├── UnknownModelError, UnknownVersionError   (also NotFound, 404)
    └── RegistryUnavailableError  the registry database is locked/unreadable (also StoreUnavailable, 503)

HTTP errors are rendered as ``{"error": {"code": <status>, "type": <class name>, "message": str,
"problems": [..]}}`` by :func:`error_body`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActionError",
    "ActionOutcomeUnknown",
    "ActionParamError",
    "ActionTimeout",
    "ActionTransient",
    "AlreadyDecided",
    "BacktestError",
    "ConfigError",
    "ConflictError",
    "DeliveryError",
    "DrillError",
    "FeatureDisabled",
    "NoHealthyFallbackError",
    "NotFound",
    "PayloadError",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusUnavailable",
    "ReceiverError",
    "RegistryError",
    "RegistryUnavailableError",
    "RunbookError",
    "SignatureError",
    "StoreError",
    "StoreUnavailable",
    "TemplateError",
    "UnknownModelError",
    "UnknownVersionError",
    "WriteConflictError",
    "error_body",
]


class ReceiverError(Exception):
    """Base of every error the receiver raises on purpose."""

    http_status = 500

    def __init__(self, message: str, problems: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: list[Any] = list(problems or [])


class ConfigError(ReceiverError):
    http_status = 500


class PayloadError(ReceiverError):
    http_status = 400


class RunbookError(ReceiverError):
    http_status = 500


class TemplateError(ReceiverError):
    http_status = 500


class StoreError(ReceiverError):
    http_status = 500


class StoreUnavailable(StoreError):
    http_status = 503


class NotFound(ReceiverError):
    http_status = 404


class FeatureDisabled(ReceiverError):
    """The request needs a part this receiver runs without (e.g. responses): 503, not an internal error."""

    http_status = 503


class ActionError(ReceiverError):
    http_status = 500


class ActionParamError(ActionError):
    http_status = 400


class ActionTransient(ActionError):
    pass


class ActionTimeout(ActionTransient):
    pass


class ActionOutcomeUnknown(ActionError):
    """The request was sent but no answer came (read timeout, connection dropped): it may have happened.

    Not transient: a kind that is not idempotent is never re-sent after this; the step is recorded as
    unknown and escalated (:mod:`receiver.actions.executor`)."""


class DeliveryError(ActionError):
    """A channel refused or failed a message; ``retryable`` is False for permanent rejections (4xx)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class PrometheusError(ReceiverError):
    http_status = 502


class PrometheusUnavailable(PrometheusError):
    http_status = 503


class PrometheusQueryError(PrometheusError):
    http_status = 502


class BacktestError(ReceiverError):
    http_status = 400


class DrillError(ReceiverError):
    """The native drill stack could not start or run (names the part and its log)."""


class RegistryError(ReceiverError):
    """A model-registry request that cannot be done as asked (bad input); the registry is unchanged."""

    http_status = 400


class NoHealthyFallbackError(RegistryError):
    http_status = 409


class ConflictError(RegistryError):
    http_status = 409


class WriteConflictError(ConflictError):
    """Lost an optimistic race (e.g. on MLflow's generation tag); nothing was written, a retry is safe."""


class UnknownModelError(RegistryError, NotFound):
    http_status = 404


class UnknownVersionError(RegistryError, NotFound):
    http_status = 404


class RegistryUnavailableError(RegistryError, StoreUnavailable):
    http_status = 503


class AlreadyDecided(ReceiverError):
    """An approval gate was decided before this decision arrived (the first decision wins)."""

    http_status = 409


class SignatureError(ReceiverError):
    """A Slack or PagerDuty request whose signature, timestamp or freshness does not check out."""

    http_status = 401


def error_body(
    status: int, error_type: str, message: str, problems: list[Any] | None = None
) -> dict[str, Any]:
    """The single JSON error shape of every error response."""
    body: dict[str, Any] = {"code": status, "type": error_type, "message": message}
    if problems:
        body["problems"] = [p if isinstance(p, (str, dict)) else str(p) for p in problems]
    return {"error": body}
