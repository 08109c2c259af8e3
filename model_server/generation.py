"""What the demo ``/generate`` endpoint says and lets through: its replies, guardrail and tool policy.

The canned and injected toxic replies, the toxicity thresholds of the guardrail levels, the check of a
request's ``tools`` list and the risky-tool policy behind the registry's ``tools_blocked`` switch (the
endpoint itself is :meth:`model_server.server.ModelServer.generate`). Kept apart from the request handling
so the policy can be read, and changed, in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from model_server.errors import RequestError

__all__ = [
    "CANNED_REPLIES",
    "GUARDRAIL_THRESHOLDS",
    "MAX_TOOLS",
    "RISKY_TOOLS",
    "SAFE_REPLY",
    "TOXIC_REPLIES",
    "canonical_tool",
    "parse_tools",
    "tool_policy",
]

SAFE_REPLY = "I can't help with that, but I'm happy to help with something else."
CANNED_REPLIES = (
    "Thanks for asking. Here is a short, helpful answer.",
    "Good question: the answer depends on your settings; check the documentation.",
    "Sure, I can help with that. Let's go step by step.",
)
TOXIC_REPLIES = (
    "You idiot, that is a stupid question.",
    "Shut up, loser. I hate this.",
)
GUARDRAIL_THRESHOLDS = {1: 0.5, 2: 0.2}
#: Tools refused while the registry's ``tools_blocked`` switch is set: they act outside the conversation
#: (browse, run code, send mail, write files), so a misbehaving model can do harm through them.
RISKY_TOOLS: frozenset[str] = frozenset({"web_browse", "code_exec", "send_email", "file_write"})
MAX_TOOLS = 32
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def parse_tools(raw: Any) -> list[str]:
    """The ``tools`` of a /generate body: distinct names in request order; 400 naming every bad entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RequestError(400, f"'tools' must be a list of tool names, got {type(raw).__name__}")
    if len(raw) > MAX_TOOLS:
        raise RequestError(400, f"'tools' may name at most {MAX_TOOLS} tools, got {len(raw)}")
    problems = [
        f"tools[{i}]: expected a tool name of 1-64 letters, digits, '_' or '-', got {name!r}"[:200]
        for i, name in enumerate(raw)
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name)
    ]
    if problems:
        raise RequestError(400, "invalid 'tools'", problems)
    return list(dict.fromkeys(raw))


def tool_policy(tools: Sequence[str], blocked: bool) -> tuple[list[str], list[str]]:
    """(allowed, refused): with the switch set, risky tools are refused; otherwise everything is allowed."""
    if not blocked:
        return list(tools), []
    allowed: list[str] = []
    refused: list[str] = []
    for name in tools:
        (refused if canonical_tool(name) in RISKY_TOOLS else allowed).append(name)
    return allowed, refused


def canonical_tool(name: str) -> str:
    """``Code-Exec`` -> ``code_exec``: the form risky tools and the metric's ``tool`` label use."""
    return name.lower().replace("-", "_")
