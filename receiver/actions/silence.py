"""``silence``: a time-boxed Alertmanager silence through its v2 API; recovery expires it.

Matchers use the one grammar of :mod:`receiver.matchers` (as runbook ``match:`` lists do),
``'model="{{ labels.model }}"'``. The matcher is parsed *before* rendering and only its value is rendered,
so a label value with quotes or commas stays one literal value (data) and cannot add matchers. As Alertmanager
requires, at least one matcher must not match the empty value (else the silence would cover every alert
without that label). The comment always names the incident. Not idempotent: running twice makes two silences.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from receiver.actions.base import ActionContext, ActionResult, BaseAction, parse_duration
from receiver.actions.transport import send
from receiver.errors import ActionError, ActionParamError
from receiver.matchers import Matcher, MatcherError, make_matcher
from receiver.matchers import parse_matcher as parse_text
from receiver.templating import render

__all__ = ["SilenceAction", "parse_matcher"]


def parse_matcher(text: str) -> dict[str, Any]:
    """``name="value"`` / ``name=~"re"`` / ``name!="v"`` / ``name!~"re"`` -> an Alertmanager v2 matcher."""
    return _parse(text).to_api()


def _parse(text: Any) -> Matcher:
    try:
        return parse_text(text)
    except MatcherError as exc:
        raise ActionParamError(f"silence: matcher {exc}") from None


def _from_api(item: Mapping[str, Any]) -> Matcher:
    """A matcher already in API form (a recovery step's defaults), checked with the same rules."""
    try:
        op = (
            ("=~" if item.get("isEqual", True) else "!~")
            if item.get("isRegex")
            else ("=" if item.get("isEqual", True) else "!=")
        )
        return make_matcher(str(item.get("name", "")), op, str(item.get("value", "")))
    except MatcherError as exc:
        raise ActionParamError(f"silence: matcher {exc}") from None


def _check_not_all_empty(matchers: list[Matcher]) -> None:
    for m in matchers:
        if m.op == "=" and not m.value:
            raise ActionParamError(
                f"silence: matcher on {m.name!r} has an empty value; it would match alerts without that label"
            )
    if all(m.matches({}) for m in matchers):
        shown = ", ".join(str(m) for m in matchers)
        raise ActionParamError(
            f"silence: every matcher ({shown}) matches an empty value, so the silence would cover alerts "
            "without those labels; Alertmanager requires one that does not"
        )


class SilenceAction(BaseAction):
    kind = "silence"
    containment = False
    idempotent = False
    recoverable = True

    def render(self, params: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        out = super().render({k: v for k, v in params.items() if k != "matchers"}, context)
        matchers = params.get("matchers")
        if not isinstance(matchers, list) or not matchers:
            raise ActionParamError(f"silence: 'matchers' must be a non-empty list, got {matchers!r}")
        rendered: list[dict[str, Any]] = []
        for text in matchers:
            if isinstance(text, Mapping):  # already parsed and rendered (a recovery step's defaults)
                rendered.append(dict(text))
                continue
            matcher = _parse(text)
            if "{" in matcher.value:
                try:
                    matcher = matcher.with_value(render(matcher.value, context))
                except MatcherError as exc:
                    raise ActionParamError(f"silence: matcher {text!r} once rendered: {exc}") from None
            rendered.append(matcher.to_api())
        out["matchers"] = rendered
        return out

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"matchers", "duration", "comment"}
        if unknown:
            raise ActionParamError(f"silence: unknown parameter(s) {', '.join(sorted(unknown))}")
        matchers = params.get("matchers")
        if not isinstance(matchers, list) or not matchers:
            raise ActionParamError("silence: 'matchers' must be a non-empty list")
        parsed = [_parse(m) if not isinstance(m, Mapping) else _from_api(m) for m in matchers]
        _check_not_all_empty(parsed)
        if "duration" not in params:
            raise ActionParamError("silence: 'duration' is required (a silence is always time-boxed)")
        comment = params.get("comment", "")
        if not isinstance(comment, str):
            raise ActionParamError(f"silence: 'comment' must be a string, got {comment!r}")
        return {
            "matchers": [m.to_api() for m in parsed],
            "duration": parse_duration(params["duration"], "silence: duration"),
            "comment": comment,
        }

    @staticmethod
    def _base(ctx: ActionContext) -> str:
        if not ctx.settings.alertmanager_url:
            raise ActionParamError("silence: settings.alertmanager_url is not set")
        return ctx.settings.alertmanager_url.rstrip("/")

    def run(self, params: Mapping[str, Any], ctx: ActionContext, snapshot: Mapping[str, Any]) -> ActionResult:
        if params["duration"] > ctx.settings.silence_max_seconds:
            raise ActionParamError(
                f"silence: duration {params['duration']:g}s exceeds the maximum of "
                f"{ctx.settings.silence_max_seconds:g}s (settings.silence_max_seconds)"
            )
        starts = ctx.now
        ends = starts + timedelta(seconds=params["duration"])
        comment = f"incident {ctx.incident_id}" + (f": {params['comment']}" if params["comment"] else "")
        body = {
            "matchers": params["matchers"],
            "startsAt": starts.isoformat(),
            "endsAt": ends.isoformat(),
            "createdBy": ctx.settings.actor,
            "comment": comment,
        }
        response = send(
            ctx.http(),
            "POST",
            self._base(ctx) + "/api/v2/silences",
            what="silence",
            timeout=ctx.timeout,
            json_body=body,
        )
        try:
            silence_id = str(response.json()["silenceID"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ActionError(
                f"silence: Alertmanager answered without a silenceID: {response.text[:200]}"
            ) from exc
        return ActionResult(
            "succeeded",
            f"silence {silence_id} until {ends.isoformat()}",
            {"silence_id": silence_id, "ends_at": ends.isoformat(), "matchers": params["matchers"]},
        )

    def recover(
        self, params: Mapping[str, Any], prior: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult:
        silence_id = prior.get("silence_id")
        if not silence_id:
            return ActionResult.skipped("silence: no silence id recorded; nothing to expire")
        base = self._base(ctx)
        current = send(
            ctx.http(), "GET", f"{base}/api/v2/silence/{silence_id}", what="silence", timeout=ctx.timeout
        ).json()
        if current.get("status", {}).get("state") == "expired":
            return ActionResult(
                "succeeded", f"silence {silence_id} had already expired", {"silence_id": silence_id}
            )
        send(ctx.http(), "DELETE", f"{base}/api/v2/silence/{silence_id}", what="silence", timeout=ctx.timeout)
        return ActionResult("succeeded", f"silence {silence_id} expired", {"silence_id": silence_id})
