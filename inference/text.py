"""Decoding token ids with the package's tokenizer and splitting FINDINGS / IMPRESSION sentences.

Must not import onnxruntime, app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

FINDINGS = "FINDINGS"
IMPRESSION = "IMPRESSION"
_HEADER = re.compile(r"\b(findings|impression)\s*:", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.]*\.|[^.]+$")


@dataclass(frozen=True)
class TextSentence:
    """A sentence of the decoded report: its text, section and token span [start, end)."""

    text: str
    section: str
    token_start: int
    token_end: int


class ReportTokenizer:
    """The package's `tokenizers` file, decoding with the special tokens left out."""

    def __init__(self, path: Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))

    def decode(self, ids: list[int] | tuple[int, ...]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def token_ends(self, ids: list[int] | tuple[int, ...]) -> list[int]:
        """Character offset in decode(ids) where each token's text ends (prefix decoding)."""
        return [len(self.decode(ids[: i + 1])) for i in range(len(ids))]


def split_report(text: str, token_ends: list[int]) -> tuple[str, str, list[TextSentence]]:
    """(findings, impression, sentences) of `text`; sentences end with '.'.

    Text before any header counts as findings; a missing section gives an empty string.
    Token i belongs to the sentence holding its last character (offset token_ends[i] - 1).
    """
    pieces: dict[str, list[tuple[int, int]]] = {FINDINGS: [], IMPRESSION: []}
    section, cursor = FINDINGS, 0
    for match in _HEADER.finditer(text):
        pieces[section].append((cursor, match.start()))
        section, cursor = match.group(1).upper(), match.end()
    pieces[section].append((cursor, len(text)))
    sentences: list[tuple[str, str, int, int]] = []
    for name in (FINDINGS, IMPRESSION):
        for start, end in pieces[name]:
            for found in _SENTENCE.finditer(text, start, end):
                body = found.group(0).strip()
                if body and body != ".":
                    sentences.append((body, name, found.start(), found.end()))
    sentences.sort(key=lambda s: s[2])
    result = [_with_tokens(s, token_ends) for s in sentences]
    findings = " ".join(s.text for s in result if s.section == FINDINGS)
    impression = " ".join(s.text for s in result if s.section == IMPRESSION)
    return findings, impression, result


def _with_tokens(sentence: tuple[str, str, int, int], token_ends: list[int]) -> TextSentence:
    body, section, start, end = sentence
    inside = [i for i, e in enumerate(token_ends) if start < e <= end]
    if not inside:
        return TextSentence(body, section, 0, 0)
    return TextSentence(body, section, inside[0], inside[-1] + 1)
