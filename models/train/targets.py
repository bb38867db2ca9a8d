"""Supervision targets of one study: token ids, each token's ground-truth slices, finding boxes.

Sentences and their token spans come from inference.text.split_report, the runtime's own rule,
so the slices a sentence is trained to attend to are those the runtime will read it against.
Must not import app or ui.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from inference.text import split_report
from models.phantoms.truth import LOBE_NAMES

_NEGATIVE = re.compile(r"^(no|there is no|there are no)\b|\bnormal\b", re.IGNORECASE)


def is_negative(sentence: str) -> bool:
    return bool(_NEGATIVE.search(sentence.strip()))


def mentions(sentence: str, finding: dict[str, Any]) -> bool:
    """Whether a (positive) report sentence speaks of ground-truth `finding`."""
    s = sentence.lower()
    if is_negative(s):
        return False
    kind = finding["type"]
    if kind == "nodule":
        return "nodule" in s and LOBE_NAMES.get(finding.get("lobe") or "", "?") in s
    if kind == "effusion":
        return ("pleural" in s or "effusion" in s) and (finding.get("side") in s or "bilateral" in s)
    if kind == "covid":
        return any(w in s for w in ("ground-glass opacit", "consolidation", "covid"))
    if kind == "emphysema":
        return "emphysema" in s
    if kind == "cardiomegaly":
        return "cardiomegaly" in s or "heart is" in s and "enlarged" in s
    return False


def token_ends(tokenizer: Tokenizer, ids: list[int]) -> list[int]:
    """Character offset where each token's text ends in the decoded prefix (as the runtime)."""
    return [len(tokenizer.decode(ids[: i + 1], skip_special_tokens=True)) for i in range(len(ids))]


def slice_mask(ranges: list[list[int]], original_indices: np.ndarray) -> np.ndarray:
    """(S,) bool: sampled slices whose original index lies in any range (nearest if none)."""
    oi = np.asarray(original_indices)
    mask = np.zeros(len(oi), dtype=bool)
    for lo, hi in ranges:
        inside = (oi >= lo) & (oi <= hi)
        if not inside.any():
            gap = np.maximum(lo - oi, oi - hi)
            inside = gap == gap.min()
        mask |= inside
    return mask


def patch_targets(findings: list[dict[str, Any]], original_indices: np.ndarray, size: int,
                  grid: int) -> tuple[np.ndarray, np.ndarray]:
    """((S, G, G) float mask of focal-finding boxes on each sampled slice, (S,) bool has-box)."""
    oi = np.asarray(original_indices)
    masks = np.zeros((len(oi), grid, grid), dtype=np.float32)
    for finding in findings:
        for k, *box in finding.get("slice_boxes") or []:
            rows, columns = box_cells(box, size, grid)
            masks[oi == k, rows, columns] = 1.0
    return masks, masks.reshape(len(oi), -1).any(axis=1)


def box_cells(box, size: int, grid: int) -> tuple[slice, slice]:
    """(rows, columns) of the `grid` x `grid` patches that box (x0, y0, x1, y1; inclusive pixels of
    a `size` x `size` slice) touches."""
    x0, y0, x1, y1 = box
    c0, c1 = (int((x + 0.5) * grid / size) for x in (x0, x1))
    r0, r1 = (int((y + 0.5) * grid / size) for y in (y0, y1))
    return slice(r0, r1 + 1), slice(c0, c1 + 1)


@dataclass
class StudyTargets:
    """ids: BOS .. EOS; row i of token_slices is the generated token ids[i + 1]'s slice mask."""

    ids: list[int]
    token_slices: np.ndarray  # (T, S) bool, T = len(ids) - 1
    token_supervised: np.ndarray  # (T,) bool
    patch_mask: np.ndarray  # (S, G, G)
    patch_supervised: np.ndarray  # (S,)


def study_targets(record, tokenizer: Tokenizer, grid: int, max_tokens: int = 120) -> StudyTargets:
    """Targets of a StudyRecord (models.train.data) for a `grid` x `grid` patch layout."""
    ids = tokenizer.encode(record.report).ids
    ids = ids[: max_tokens] + ([ids[-1]] if len(ids) > max_tokens else [])  # keep EOS
    generated = ids[1:-1]
    oi = np.asarray(record.original_indices)
    token_slices = np.zeros((len(ids) - 1, len(oi)), dtype=bool)
    supervised = np.zeros(len(ids) - 1, dtype=bool)
    text = tokenizer.decode(generated, skip_special_tokens=True)
    _, _, sentences = split_report(text, token_ends(tokenizer, generated))
    for sentence in sentences:
        ranges = [f["slice_range"] for f in record.findings
                  if f.get("slice_range") and mentions(sentence.text, f)]
        if ranges and sentence.token_end > sentence.token_start:
            token_slices[sentence.token_start : sentence.token_end] = slice_mask(ranges, oi)
            supervised[sentence.token_start : sentence.token_end] = True
    patches, has = patch_targets(record.findings, oi, record.size, grid)
    return StudyTargets(ids, token_slices, supervised, patches, has)
