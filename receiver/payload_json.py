"""A webhook body decoded as JSON, refusing what could hurt the receiver or the store.

Bodies come from the network, so before any field is read this refuses non-UTF-8, malformed or truncated
JSON, nesting beyond :data:`MAX_JSON_DEPTH`, integers past Python's digit limit and lone surrogates (which
cannot be encoded, stored or logged). Nothing here knows the notification's fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

from receiver.errors import PayloadError

__all__ = ["MAX_JSON_DEPTH", "decode_json", "json_depth", "might_hold_surrogates", "safe_text"]

#: Deepest nesting accepted in a body. A v4 payload needs 4 levels; anything far deeper is hostile.
MAX_JSON_DEPTH = 32


def json_depth(value: Any) -> int:
    """Maximum nesting depth, iteratively (a recursive walk could itself overflow)."""
    if not isinstance(value, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # only containers are pushed: scalars (most of a payload) cost one isinstance each
        item, level = stack.pop()
        if level > deepest:
            deepest = level
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
    return deepest


# a JSON escape of a UTF-16 surrogate: the only way a lone surrogate gets into a decoded str (raw bytes
# of one are invalid UTF-8); valid pairs match too, and decode to one code point, so only lone ones remain
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """``text`` with any lone surrogate shown as ``\\udXXX``, so it can be encoded, stored and logged."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def might_hold_surrogates(body: bytes) -> bool:
    return (b"\\ud" in body or b"\\uD" in body) and _SURROGATE_ESCAPE.search(body) is not None


def _surrogate_problems(document: Any) -> list[str]:
    """Every string (key or value) holding a lone surrogate, by JSON path (iterative, depth-checked)."""
    problems: list[str] = []
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found is not None:
                problems.append(
                    f"{path or '$'}: lone surrogate {safe_text(found.group())} at character {found.start()} "
                    "(not valid Unicode; Alertmanager never sends one)"
                )
        elif isinstance(value, dict):
            for key, child in value.items():
                name = safe_text(key)
                if name != key:
                    problems.append(f"{path or '$'}: name {name!r} holds a lone surrogate (not Unicode)")
                stack.append((child, f"{path}.{name}" if path else name))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(value))
    return sorted(problems)


def decode_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a UTF-8 JSON body, refusing non-UTF-8, malformed/truncated, too deeply nested input,
    integers beyond Python's digit limit and strings with lone surrogates (they cannot be stored)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            "body is not valid UTF-8", [f"$: invalid UTF-8 at byte {exc.start}: {exc.reason}"]
        ) from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise PayloadError(
            "body is nested too deeply", [f"$: nesting deeper than {max_depth} levels"]
        ) from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            "body is not valid JSON",
            [f"$: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"],
        ) from None
    except ValueError:  # int() of a literal over sys.get_int_max_str_digits() (4300 by default)
        raise PayloadError(
            "body holds a number too long to read", ["$: an integer literal longer than 4300 digits"]
        ) from None
    if json_depth(document) > max_depth:
        raise PayloadError("body is nested too deeply", [f"$: nesting deeper than {max_depth} levels"])
    if might_hold_surrogates(body):
        problems = _surrogate_problems(document)
        if problems:
            raise PayloadError("body holds text that is not valid Unicode", problems)
    return document
