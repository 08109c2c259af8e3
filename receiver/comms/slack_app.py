"""Slack app mode (channel type ``slack_app``): one thread per incident, kept current, with buttons.

The incident's first message goes out through ``chat.postMessage`` and its ``ts`` is kept in the store
(:class:`~receiver.store.base.ChatThreads`), so every later update is a reply in that thread (after a
restart, or from another replica, too) and the first message is rewritten through ``chat.update`` to show
the latest state. Messages carry the buttons Acknowledge and Recover, and Approve / Deny for each pending
approval gate; clicks come back to ``POST /slack/interactions`` (:mod:`receiver.api.slack`).

Configuration (secrets only from files; the bot token is re-read at each call so rotation needs no
restart)::

    channels:
      ops:
        type: slack_app
        channel: C0123ABCD                 # the Slack conversation id
        bot_token_file: slack-bot-token    # xoxb-...
        signing_secret_file: slack-signing-secret
        users_file: slack-users.yml        # {U012AB3CD: responder, U045EF6GH: admin}
        api_url: https://slack.com/api     # default; tests point it at a local server
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
import yaml

from receiver.comms.channels import SlackChannel
from receiver.comms.message import AUDIENCES, RenderedMessage
from receiver.config import Secret
from receiver.errors import DeliveryError
from receiver.runbooks.approval import APPROVAL_ROLES
from receiver.store.base import ApprovalRows, ChatThreads

__all__ = ["SLACK_API_URL", "SlackAppChannel", "SlackUsers", "build_slack_app"]

log = logging.getLogger("receiver.comms.slack_app")

SLACK_API_URL = "https://slack.com/api"
_SETTINGS = {
    "type",
    "channel",
    "bot_token_file",
    "signing_secret_file",
    "users_file",
    "api_url",
    "audience",
    "timeout",
}
#: Slack answers HTTP 200 with ``ok: false``; these errors are worth retrying
_RETRYABLE = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class SlackUsers:
    """Slack user id → role (viewer, responder, admin), from a YAML file; anyone unlisted is a viewer."""

    def __init__(self, roles: Mapping[str, str]) -> None:
        self.roles = dict(roles)

    def role_of(self, user_id: str) -> str:
        return self.roles.get(user_id, "viewer")

    @classmethod
    def from_file(cls, path: Path, where: str, problems: list[str]) -> SlackUsers:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            problems.append(f"{where}: cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}")
            return cls({})
        except yaml.YAMLError as exc:
            problems.append(f"{where}: {str(path)!r} is not valid YAML: {exc}")
            return cls({})
        if isinstance(document, Mapping) and isinstance(document.get("users"), Mapping):
            document = document["users"]
        if not isinstance(document, Mapping):
            problems.append(f"{where}: expected a mapping of Slack user id to role")
            return cls({})
        roles: dict[str, str] = {}
        for user, role in document.items():
            if role not in APPROVAL_ROLES:
                problems.append(
                    f"{where}: user {user!r}: role {role!r} is not one of {', '.join(APPROVAL_ROLES)}"
                )
                continue
            roles[str(user)] = str(role)
        return cls(roles)


class SlackAppChannel(SlackChannel):
    """A Slack app's bot: ``chat.postMessage`` for the first message, thread replies and ``chat.update``."""

    kind = "slack_app"

    def __init__(
        self,
        name: str,
        api_url: str,
        *,
        conversation: str,
        token_file: Path,
        signing_secret: Secret,
        users: SlackUsers,
        audience: str = "oncall",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(name, api_url.rstrip("/"), audience=audience, timeout=timeout, session=session)
        self.conversation = conversation
        self.token_file = token_file
        self.signing_secret = signing_secret
        self.users = users
        self.threads: ChatThreads | None = None
        self.approvals: ApprovalRows | None = None

    def bind(self, threads: ChatThreads, approvals: ApprovalRows | None = None) -> None:
        """Give the channel the store's thread table (and approvals, for the Approve / Deny buttons)."""
        self.threads, self.approvals = threads, approvals

    # -- payload ----------------------------------------------------------------------------------------
    def build_payload(self, message: RenderedMessage) -> dict[str, Any]:
        payload = super().build_payload(message)
        incident_id = message.update.incident_id
        content: list[dict[str, Any]] = list(payload["blocks"])
        gates: list[dict[str, Any]] = []
        buttons = [
            _button("Acknowledge", "ack", {"incident": incident_id}),
            _button("Recover", "recover", {"incident": incident_id}),
        ]
        for approval in self._pending(incident_id):
            gates.append(
                {
                    "type": "section",
                    "text": {
                        "type": "plain_text",
                        "text": f"Approval needed ({approval.role}, until {approval.timeout_at}, then "
                        f"{approval.on_timeout}): {approval.summary}"[:3000],
                        "emoji": False,
                    },
                }
            )
            value = {"incident": incident_id, "approval": approval.id}
            buttons.append(_button(f"Approve {approval.step_id}", f"approve-{approval.id}", value, "primary"))
            buttons.append(_button(f"Deny {approval.step_id}", f"deny-{approval.id}", value, "danger"))
        actions = {"type": "actions", "block_id": f"incident-{incident_id}", "elements": buttons[:25]}
        # Slack takes 50 blocks: the gates and the buttons are what a person acts on, so a long message
        # gives up its last content blocks (its text already ends with a link to the incident), never them
        gates = gates[:24]
        blocks = [*content[: 50 - len(gates) - 1], *gates, actions]
        return {**payload, "blocks": blocks, "incident_id": incident_id, "event": message.update.event}

    def _pending(self, incident_id: str) -> list[Any]:
        if self.approvals is None or not str(incident_id).isdigit():
            return []
        return self.approvals.pending(int(incident_id))

    # -- delivery ---------------------------------------------------------------------------------------
    def send(self, payload: Mapping[str, Any], *, idempotency_key: str | None = None) -> int:
        if self.threads is None:
            raise DeliveryError(f"slack_app channel {self.name!r}: not bound to the store", retryable=True)
        incident_id = int(payload["incident_id"])
        body = {k: v for k, v in payload.items() if k not in ("incident_id", "event")}
        thread = self.threads.get(self.name, incident_id)
        if thread is None:
            answer = self._call("chat.postMessage", {**body, "channel": self.conversation})
            self.threads.remember(
                self.name, incident_id, str(answer.get("channel") or self.conversation), str(answer["ts"])
            )
            return 200
        self._call(
            "chat.postMessage", {**body, "channel": thread.conversation, "thread_ts": thread.thread_ts}
        )
        try:  # the first message shows the latest state; if this fails the next update refreshes it
            self._call("chat.update", {**body, "channel": thread.conversation, "ts": thread.thread_ts})
        except DeliveryError as exc:
            log.warning("slack_app channel %s: chat.update failed: %s", self.name, exc.message)
        return 200

    def _call(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        where = f"slack_app channel {self.name!r} {method}"
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise DeliveryError(
                f"{where}: cannot read bot_token_file: {exc.strerror}", retryable=True
            ) from exc
        try:
            response = self._session.post(
                f"{self._url}/{method}",
                data=json.dumps(dict(body)),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Authorization": f"Bearer {token}",
                },
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise DeliveryError(f"{where}: timed out after {self.timeout:g}s", retryable=True) from exc
        except requests.RequestException as exc:
            raise DeliveryError(f"{where}: connection failed ({type(exc).__name__})", retryable=True) from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise DeliveryError(f"{where}: HTTP {status}", retryable=True, status=status)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if status >= 300 or not isinstance(answer, dict):
            raise DeliveryError(f"{where}: HTTP {status}: unexpected answer", retryable=False, status=status)
        if not answer.get("ok"):
            error = str(answer.get("error") or "unknown error")[:200]
            raise DeliveryError(f"{where}: {error}", retryable=error in _RETRYABLE, status=status)
        return answer


def _button(text: str, action_id: str, value: Mapping[str, Any], style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:75]},
        "action_id": action_id,
        "value": json.dumps(dict(value), sort_keys=True),
    }
    if style:
        button["style"] = style
    return button


def _read_secret_file(
    spec: Mapping[str, Any], key: str, where: str, base_dir: Path | None, problems: list[str]
) -> tuple[Path, str] | None:
    if key not in spec:
        problems.append(f"{where}.{key}: required (a file holding the secret)")
        return None
    path = Path(str(spec[key]))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(f"{where}.{key}: cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}")
        return None
    if not value:
        problems.append(f"{where}.{key}: {str(path)!r} is empty")
        return None
    return path, value


def build_slack_app(
    name: str,
    spec: Mapping[str, Any],
    *,
    base_dir: Path | None,
    session: requests.Session,
    problems: list[str],
) -> SlackAppChannel | None:
    """The channel from its settings, or None with every problem appended (secrets never echoed)."""
    where = f"channels.{name}"
    before = len(problems)
    unknown = sorted(set(spec) - _SETTINGS)
    if unknown:
        problems.append(f"{where}: unknown setting(s) {', '.join(map(str, unknown))}")
    conversation = spec.get("channel")
    if not isinstance(conversation, str) or not conversation.strip():
        problems.append(f"{where}.channel: the Slack conversation id (e.g. C0123ABCD) is required")
    api_url = spec.get("api_url", SLACK_API_URL)
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        problems.append(f"{where}.api_url: expected an http(s) URL, got {api_url!r}")
    audience = spec.get("audience", "oncall")
    if audience not in AUDIENCES:
        problems.append(f"{where}.audience: {audience!r} is not one of {', '.join(AUDIENCES)}")
    timeout = spec.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        problems.append(f"{where}.timeout: expected a positive number of seconds, got {timeout!r}")
    token = _read_secret_file(spec, "bot_token_file", where, base_dir, problems)
    secret = _read_secret_file(spec, "signing_secret_file", where, base_dir, problems)
    users = SlackUsers({})
    if "users_file" in spec:
        path = Path(str(spec["users_file"]))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        users = SlackUsers.from_file(path, f"{where}.users_file", problems)
    if len(problems) > before or token is None or secret is None:
        return None
    return SlackAppChannel(
        name,
        str(api_url),
        conversation=str(conversation).strip(),
        token_file=token[0],
        signing_secret=Secret(secret[1]),
        users=users,
        audience=str(audience),
        timeout=float(timeout),
        session=session,
    )
