"""Sandboxed Jinja for runbook expressions (severity, ``when``) and message templates.

Alert labels and annotations are untrusted: they are passed to templates as *data* only, never compiled
as templates themselves. Every environment is a :class:`SandboxedEnvironment` with ``StrictUndefined``, so a
misspelt name fails loudly instead of rendering as an empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from receiver.errors import TemplateError

__all__ = ["compile_expression", "compile_template", "evaluate", "make_environment", "render"]


def make_environment(*, autoescape: bool = False) -> SandboxedEnvironment:
    """A fresh sandboxed environment with ``StrictUndefined`` and no access to the filesystem."""
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=autoescape, keep_trailing_newline=False
    )
    return env


@lru_cache(maxsize=1)
def _shared_environment() -> SandboxedEnvironment:
    return make_environment()


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """Compile a Jinja expression such as ``value >= 0.2 and labels.tier == "critical"``.

    Raises :class:`TemplateError` with Jinja's message on a syntax error.
    """
    try:
        return _shared_environment().compile_expression(source, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"invalid expression {source!r}: {exc.message}") from exc


@lru_cache(maxsize=1024)
def compile_template(source: str) -> jinja2.Template:
    """Compile a Jinja template string; raises :class:`TemplateError` on a syntax error."""
    try:
        return _shared_environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"invalid template (line {exc.lineno}): {exc.message}") from exc


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression in the sandbox; any failure becomes a :class:`TemplateError`."""
    expression = compile_expression(source)
    try:
        return expression(**context)
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(f"expression {source!r} failed: {type(exc).__name__}: {exc}") from exc


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template in the sandbox; any failure becomes a :class:`TemplateError`."""
    template = compile_template(source)
    try:
        return template.render(**context)
    except Exception as exc:
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from exc
