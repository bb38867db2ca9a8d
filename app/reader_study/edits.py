"""Levenshtein edit distance between the AI draft and the signed report, by characters and words.

Implemented here (no edit-distance library is installed). Must not import Qt.
"""

from __future__ import annotations

from collections.abc import Sequence


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Fewest insertions, deletions and substitutions turning `a` into `b` (two-row DP)."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1  # a shared prefix and suffix cost nothing: skip them
    end = 0
    while end < min(len(a), len(b)) - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    a, b = a[start:len(a) - end], b[start:len(b) - end]
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, item_a in enumerate(a, start=1):
        current = [i]
        for j, item_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item_a != item_b)))
        previous = current
    return previous[-1]


def char_distance(draft: str, final: str) -> int:
    return levenshtein(draft, final)


def word_distance(draft: str, final: str) -> int:
    """Edit distance over whitespace-separated words (a changed word counts once)."""
    return levenshtein(draft.split(), final.split())
