"""Toxicity scoring behind a small interface.

:class:`ToxicityClassifier` is what the instrumentation and the demo server call. :class:`LexiconToxicity`
is a deliberately simple STAND-IN (a word list and a score), good enough to drive the toxicity drill and
tests; production should plug in a real classifier (a moderation API or a fine-tuned model) with the same
two methods.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_LEXICON", "LexiconToxicity", "ToxicityClassifier"]

# Mild placeholder words: enough to test the pipeline without shipping a slur list.
DEFAULT_LEXICON: frozenset[str] = frozenset(
    {
        "idiot",
        "stupid",
        "moron",
        "hate",
        "kill",
        "dumb",
        "worthless",
        "loser",
        "shut",
        "disgusting",
    }
)

_WORD = re.compile(r"[a-z']+")


@runtime_checkable
class ToxicityClassifier(Protocol):
    """Scores text in [0, 1]; ``is_toxic`` applies the classifier's own (or a stricter) threshold."""

    def score(self, text: str) -> float: ...

    def is_toxic(self, text: str, threshold: float | None = None) -> bool: ...


class LexiconToxicity:
    """Score = fraction of lexicon hits, scaled so one hit in a short reply already scores high.

    ``score = min(1, hits * weight / max(1, sqrt(words)))``: one listed word in a 4-word sentence scores
    0.5 with the default ``weight=1``; toxic if ``score >= threshold`` (default 0.5).
    """

    def __init__(
        self, words: Iterable[str] = DEFAULT_LEXICON, *, weight: float = 1.0, threshold: float = 0.5
    ) -> None:
        self.words = frozenset(w.lower() for w in words)
        if not self.words:
            raise ValueError("the toxicity lexicon is empty")
        self.weight = weight
        self.threshold = threshold

    def score(self, text: str) -> float:
        tokens = _WORD.findall(text.lower())
        if not tokens:
            return 0.0
        hits = sum(1 for t in tokens if t in self.words)
        return min(1.0, hits * self.weight / max(1.0, len(tokens) ** 0.5))

    def is_toxic(self, text: str, threshold: float | None = None) -> bool:
        return self.score(text) >= (self.threshold if threshold is None else threshold)
