"""The error a model-server request handler raises: an HTTP status, a message and the problems found.

Its own module because both the request handling (:mod:`model_server.server`, which re-exports it) and the
``/generate`` body checks (:mod:`model_server.generation`) raise it, and :mod:`model_server.web` turns it
into the JSON error response.
"""

from __future__ import annotations

__all__ = ["RequestError"]


class RequestError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []
