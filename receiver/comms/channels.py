"""Chat channels: Slack incoming webhook, Microsoft Teams webhook, generic JSON webhook.

A channel does two separate things so the outbox can sit between them: :meth:`Channel.build_payload`
turns a :class:`RenderedMessage` into the JSON the endpoint expects (stored in the outbox), and
:meth:`Channel.send` POSTs a stored payload, raising :class:`DeliveryError` with ``retryable`` set for
5xx, 429 and transport errors and cleared for other 4xx.

Webhook URLs are secrets. They are read from a file (``url_file``) or an environment variable
(``url_env``) when the channel set is built, and never appear in errors, ``repr`` or logs.

Markup: Slack's top-level ``text`` is mrkdwn, so ``&``, ``<`` and ``>`` are escaped as Slack documents
(this also stops ``<!channel>`` pings smuggled in through alert labels); the message body travels as a
``plain_text`` section and links as buttons, so nothing from an alert is parsed as markup. Teams gets an
Adaptive Card whose TextBlocks do not render HTML.

Size: every payload stays inside its platform's documented limits (:mod:`receiver.comms.limits`); long
text is cut with a visible note and a link to the full text on the incident's page.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from receiver.comms import limits
from receiver.comms.limits import cut, cut_values, fit
from receiver.comms.message import AUDIENCES, RenderedMessage
from receiver.errors import ConfigError, DeliveryError

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelSet",
    "SlackChannel",
    "TeamsChannel",
    "WebhookChannel",
    "slack_escape",
]

#: body characters shown in Slack blocks / the notification text: a status update, not an archive
_SLACK_BODY_CHARS = 4 * limits.SLACK_SECTION_CHARS
_SLACK_NOTIFICATION_CHARS = limits.SLACK_SECTION_CHARS
_TEAMS_BODY_CHARS = 12000
_TEAMS_TITLE_CHARS = 200
_WEBHOOK_TEXT_CHARS = 16000
_WEBHOOK_VALUE_CHARS = 4000


def slack_escape(text: str) -> str:
    """Escape the three characters Slack treats as control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _http_url(url: str | None) -> str | None:
    return url if url and url.startswith(("http://", "https://")) else None


class Channel(ABC):
    """One configured destination. Subclasses define the payload shape."""

    kind: str = ""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        audience: str = "oncall",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self.audience = audience
        self.timeout = timeout
        self._url = url
        self._session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, audience={self.audience!r}, url=<secret>)"

    @abstractmethod
    def build_payload(self, message: RenderedMessage) -> dict[str, Any]:
        """The JSON body for this endpoint."""

    def headers(self, idempotency_key: str | None) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def send(self, payload: Mapping[str, Any], *, idempotency_key: str | None = None) -> int:
        """POST ``payload``; returns the HTTP status on 2xx, raises :class:`DeliveryError` otherwise."""
        where = f"{self.kind} channel {self.name!r}"
        try:
            response = self._session.post(
                self._url,
                json=dict(payload),
                headers=self.headers(idempotency_key),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise DeliveryError(f"{where}: timed out after {self.timeout:g}s", retryable=True) from exc
        except requests.RequestException as exc:
            # The exception text would include the URL (a secret); keep only its type.
            raise DeliveryError(f"{where}: connection failed ({type(exc).__name__})", retryable=True) from exc
        status = response.status_code
        if 200 <= status < 300:
            return status
        detail = " ".join(response.text.split())[:200] if response.text else response.reason
        retryable = status >= 500 or status == 429  # a redirect or other 4xx will not fix itself
        raise DeliveryError(f"{where}: HTTP {status}: {detail}", retryable=retryable, status=status)


class SlackChannel(Channel):
    """Slack incoming webhook: ``text`` (notification fallback) plus Block Kit ``blocks``."""

    kind = "slack"

    def build_payload(self, message: RenderedMessage) -> dict[str, Any]:
        full_at = message.update.links.incident
        title = cut(message.title, limits.SLACK_HEADER_CHARS, None)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": False}},
        ]
        buttons = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": label[: limits.SLACK_BUTTON_TEXT_CHARS]},
                "url": url,
            }
            for label, url in message.update.links.items()
            if _http_url(url) and len(url) <= limits.SLACK_BUTTON_URL_CHARS
        ][:25]
        sections = min(
            _SLACK_BODY_CHARS // limits.SLACK_SECTION_CHARS, limits.SLACK_BLOCKS - 1 - (1 if buttons else 0)
        )
        body = cut(message.text, sections * limits.SLACK_SECTION_CHARS, full_at)
        for chunk in _chunks(body, limits.SLACK_SECTION_CHARS):
            blocks.append({"type": "section", "text": {"type": "plain_text", "text": chunk, "emoji": False}})
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
        # escaping at most quintuples a character (& -> &amp;): 3,150 characters stay far under 40,000
        notification = f"{title}\n{cut(message.text, _SLACK_NOTIFICATION_CHARS, full_at)}"
        text = slack_escape(notification)[: limits.SLACK_TEXT_CHARS]
        return {"text": text, "blocks": blocks}


class TeamsChannel(Channel):
    """Microsoft Teams webhook: an Adaptive Card in a ``message`` envelope (one TextBlock per line)."""

    kind = "teams"

    def build_payload(self, message: RenderedMessage) -> dict[str, Any]:
        payload: dict[str, Any] = fit(
            lambda budget: self._card(message, budget), limits.TEAMS_MESSAGE_BYTES, _TEAMS_BODY_CHARS
        )
        return payload

    def _card(self, message: RenderedMessage, budget: int) -> dict[str, Any]:
        full_at = message.update.links.incident
        title = cut(message.title, min(_TEAMS_TITLE_CHARS, budget), None)
        body: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
        ]
        body.extend(
            {"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"}
            for line in cut(message.text, budget, full_at).split("\n")
        )
        actions = [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            for label, url in message.update.links.items()
            if _http_url(url)
        ]
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        }
        if actions:
            card["actions"] = actions
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }


class WebhookChannel(Channel):
    """Generic JSON webhook: the words plus the whole structured update; sends an ``Idempotency-Key``."""

    kind = "webhook"

    def build_payload(self, message: RenderedMessage) -> dict[str, Any]:
        payload: dict[str, Any] = fit(
            lambda budget: self._payload(message, budget), limits.WEBHOOK_PAYLOAD_BYTES, _WEBHOOK_TEXT_CHARS
        )
        return payload

    def _payload(self, message: RenderedMessage, budget: int) -> dict[str, Any]:
        update = message.update
        full_at = update.links.incident
        value_chars = min(_WEBHOOK_VALUE_CHARS, budget)
        return {
            "version": 1,
            "incident_id": update.incident_id,
            "event": update.event,
            "audience": message.audience,
            "title": cut(message.title, value_chars, full_at),
            "text": cut(message.text, budget, full_at),
            "fallback": message.fallback,
            "template_error": None if message.error is None else cut(message.error, value_chars, full_at),
            "update": cut_values(update.to_json(), value_chars, full_at),
        }

    def headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = super().headers(idempotency_key)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [" "]


CHANNEL_TYPES: Mapping[str, type[Channel]] = {
    "slack": SlackChannel,
    "teams": TeamsChannel,
    "webhook": WebhookChannel,
}


def _read_url(
    name: str, spec: Mapping[str, Any], base_dir: Path | None, environ: Mapping[str, str], problems: list[str]
) -> str | None:
    where = f"channels.{name}"
    has_file, has_env = "url_file" in spec, "url_env" in spec
    if has_file == has_env:
        problems.append(f"{where}: set exactly one of url_file or url_env (the webhook URL is a secret)")
        return None
    if "url" in spec:
        problems.append(
            f"{where}: 'url' is not accepted; put the webhook URL in a file (url_file) or an "
            "environment variable (url_env)"
        )
        return None
    if has_file:
        path = Path(str(spec["url_file"]))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            url = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(
                f"{where}.url_file: cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}"
            )
            return None
        source = f"url_file {str(path)!r}"
    else:
        var = str(spec["url_env"])
        if var not in environ:
            problems.append(f"{where}.url_env: environment variable {var!r} is not set")
            return None
        url = environ[var].strip()
        source = f"url_env {var!r}"
    if not url:
        problems.append(f"{where}: {source} is empty")
        return None
    if not url.startswith(("http://", "https://")):
        problems.append(f"{where}: {source} does not hold an http(s) URL")  # value not echoed: secret
        return None
    return url


class ChannelSet(Mapping[str, Channel]):
    """The configured channels by name. Build with :meth:`from_config`."""

    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self._channels = dict(channels)

    def __getitem__(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            known = ", ".join(sorted(self._channels)) or "none"
            raise KeyError(f"unknown channel {name!r}; configured channels: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | None,
        *,
        base_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> ChannelSet:
        """``{name: {type: slack|teams|webhook, url_file|url_env, audience?, timeout?}}``; ``slack_app``
        channels take a bot token instead (:mod:`receiver.comms.slack_app`).

        Raises :class:`ConfigError` listing every problem (the message names channels and fields, never
        URLs). ``environ`` defaults to ``os.environ``; ``session`` is shared by all channels.
        """
        if config is None:
            return cls({})
        if not isinstance(config, Mapping):
            raise ConfigError("channels: expected a mapping of channel name to settings")
        env = os.environ if environ is None else environ
        shared = session if session is not None else requests.Session()
        problems: list[str] = []
        channels: dict[str, Channel] = {}
        for name, spec in config.items():
            where = f"channels.{name}"
            if not isinstance(spec, Mapping):
                problems.append(f"{where}: expected a mapping with type and url_file/url_env")
                continue
            if spec.get("type") == "slack_app":  # Slack app mode: a bot token, not a webhook URL
                from receiver.comms.slack_app import build_slack_app

                app_channel = build_slack_app(
                    str(name), spec, base_dir=base_dir, session=shared, problems=problems
                )
                if app_channel is not None:
                    channels[str(name)] = app_channel
                continue
            unknown = sorted(set(spec) - {"type", "url_file", "url_env", "url", "audience", "timeout"})
            if unknown:
                problems.append(f"{where}: unknown setting(s) {', '.join(map(str, unknown))}")
            kind = spec.get("type")
            if kind not in CHANNEL_TYPES:
                problems.append(f"{where}.type: {kind!r} is not one of {', '.join(CHANNEL_TYPES)}")
            audience = spec.get("audience", "oncall")
            if audience not in AUDIENCES:
                problems.append(f"{where}.audience: {audience!r} is not one of {', '.join(AUDIENCES)}")
            timeout = spec.get("timeout", 10.0)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                problems.append(f"{where}.timeout: expected a positive number of seconds, got {timeout!r}")
            url = _read_url(str(name), spec, base_dir, env, problems)
            if url is None or kind not in CHANNEL_TYPES or audience not in AUDIENCES or unknown:
                continue
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                continue
            channels[str(name)] = CHANNEL_TYPES[str(kind)](
                str(name), url, audience=audience, timeout=float(timeout), session=shared
            )
        if problems:
            raise ConfigError(
                f"invalid channel configuration ({len(problems)} problem(s)): " + "; ".join(problems),
                problems,
            )
        return cls(channels)
