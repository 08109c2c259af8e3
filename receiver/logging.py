"""Structured logs (one JSON object per line) that never print secrets.

:class:`RedactingFormatter` masks (1) the values of known secrets, wherever they appear in a message, and
(2) anything that looks like an ``Authorization`` header value, bearer token or ``password=...``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from receiver.config import Secret

__all__ = ["RedactingFormatter", "configure_logging", "redact"]

_PATTERNS = (
    re.compile(r"(?i)(authorization\s*[:=]\s*)(\"?)[^\s\",}]+(?:\s+[^\s\",}]+)?"),
    re.compile(r"(?i)(bearer\s+)()[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)((?:password|passwd|token|secret)\s*[=:]\s*)(\"?)[^\s\",}]+"),
)
MASK = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return text


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[Secret] = (), *, as_json: bool = True) -> None:
        super().__init__()
        self._secrets = [s.reveal() for s in secrets]
        self._as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        message = redact(message, self._secrets)
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not self._as_json:
            return f"{stamp} {record.levelname} {record.name}: {message}"
        return json.dumps(
            {
                "ts": stamp,
                "level": record.levelname,
                "logger": record.name,
                "msg": message,
                "thread": record.threadName,
            },
            ensure_ascii=False,
        )


def configure_logging(
    level: str = "INFO", secrets: Iterable[Secret | None] = (), *, as_json: bool = True
) -> logging.Handler:
    """Install one redacting stderr handler on the ``receiver`` and ``waitress`` loggers; returns it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter([s for s in secrets if s is not None], as_json=as_json))
    for name in ("receiver", "waitress"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_receiver_handler", False)]
        handler._receiver_handler = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return handler
