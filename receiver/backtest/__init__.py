"""Replay Prometheus alerting rules over history and score them against labelled incidents.

``rules`` loads rule files, ``promql`` inlines recording rules, ``engine`` runs range queries and the
``for:`` state machine, ``scoring`` computes precision/recall/delay, ``report`` renders text or JSON.
The CLI entry is ``receiver backtest`` (``receiver/commands/backtest.py``).
"""

from __future__ import annotations

__all__: list[str] = []
