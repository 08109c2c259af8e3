"""Runbook ``match:`` entries use the one matcher grammar of :mod:`receiver.matchers` (re-exported here).

The grammar lives at the top of the package so that the ``silence`` action and the backtest, which must not
import the runbook loader, parse matchers with the very same rules.
"""

from __future__ import annotations

from receiver.matchers import Matcher, MatcherError, MatchOp, format_matcher, parse_matcher

__all__ = ["MatchOp", "Matcher", "MatcherError", "format_matcher", "parse_matcher"]
