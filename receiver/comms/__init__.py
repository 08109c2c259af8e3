"""Comms: status update facts (``message``), wording (``templates``), channels, and the durable outbox.

Import from the submodules; this package does no work at import time.
"""

from __future__ import annotations

__all__: list[str] = []
