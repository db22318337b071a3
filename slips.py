"""Typing slips: a word with one letter dropped or two neighbouring letters swapped.

Both readers of free text, the router (``agent.spelling``) and the search-query parser
(``retrieval.constraints``), read a word one slip away from exactly one word of their own
vocabulary as that word. A changed letter is no slip: it mostly makes another real word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def is_slip(typed: str, word: str) -> bool:
    """Whether ``typed`` is ``word`` with one letter dropped or two neighbouring letters swapped."""
    if len(typed) == len(word):
        diff = [i for i in range(len(word)) if typed[i] != word[i]]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and typed[diff[0]] == word[diff[1]] \
            and typed[diff[1]] == word[diff[0]]
    if len(typed) != len(word) - 1:
        return False
    i = next((k for k in range(len(typed)) if typed[k] != word[k]), len(typed))
    return typed[i:] == word[i + 1 :]


def slip_of(typed: str, vocabulary: Iterable[str]) -> str | None:
    """The one word of ``vocabulary`` (same first letter) that ``typed`` misspells by a slip, else None."""
    low = typed.lower()
    matches = {w for w in vocabulary if w and w[0] == low[:1] and is_slip(low, w)}
    return matches.pop() if len(matches) == 1 else None


def vocabulary_words(patterns: Iterable[str], min_length: int) -> frozenset[str]:
    """The plain words (letters only, at least ``min_length``) inside regular-expression alternatives."""
    words = (w for p in patterns for w in re.findall(r"(?<![\\?])\b[a-z]+\b", p.lower()))
    return frozenset(w for w in words if len(w) >= min_length)
