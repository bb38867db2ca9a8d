"""Evaluation metrics implemented here (no coco-caption, nltk or rouge-score in the environment).

Report text: corpus BLEU-4 (Papineni et al. 2002, uniform weights, brevity penalty), ROUGE-L
(LCS F-measure, beta 1.2, as coco-caption, averaged over reports) and CIDEr-D (Vedantam et al.
2015 as in coco-caption: TF-IDF n-grams 1..4 with document frequencies from the references,
clipped counts, Gaussian length penalty sigma 6, x10), all on lower-cased word tokens.
Classification: ROC AUC (Mann-Whitney, ties count half), accuracy. Explanation: pointing
hits and their chance levels. Uncertainty: percentile bootstrap over studies (scipy.stats.bootstrap)
of the finding F1 and of the paired difference between two models' F1 on the same studies. Numpy, stdlib and inference.calibration (numpy only); must not import app, ui or torch.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.stats import bootstrap

from inference.calibration import auc

IMPLEMENTATION = "own implementation in models/train/metrics.py (BLEU-4 corpus, ROUGE-L beta 1.2, CIDEr-D)"
_WORD = re.compile(r"[a-z0-9%]+(?:[-.][a-z0-9%]+)*")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (hyphenated words and decimals kept whole, punctuation dropped)."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(candidates: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-max_n of candidates against one reference each, in 0..1."""
    matched, total = [0] * max_n, [0] * max_n
    cand_len = ref_len = 0
    for cand, ref in zip(candidates, references, strict=True):
        c, r = words(cand), words(ref)
        cand_len, ref_len = cand_len + len(c), ref_len + len(r)
        for n in range(1, max_n + 1):
            cn, rn = ngrams(c, n), ngrams(r, n)
            matched[n - 1] += sum(min(k, rn[g]) for g, k in cn.items())
            total[n - 1] += max(0, len(c) - n + 1)
    if cand_len == 0 or min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total, strict=True)) / max_n
    brevity = 1.0 if cand_len > ref_len else math.exp(1.0 - ref_len / cand_len)
    return brevity * math.exp(log_precision)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, start=1):
            current = row[j]
            row[j] = previous + 1 if x == y else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def rouge_l(candidates: Sequence[str], references: Sequence[str], beta: float = 1.2) -> float:
    """Mean ROUGE-L F-measure, in 0..1."""
    scores = []
    for cand, ref in zip(candidates, references, strict=True):
        c, r = words(cand), words(ref)
        lcs = _lcs(c, r)
        if lcs == 0:
            scores.append(0.0)
            continue
        precision, recall = lcs / len(c), lcs / len(r)
        scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
    return float(np.mean(scores)) if scores else 0.0


def _tfidf(counts: Counter, df: Counter, log_docs: float) -> tuple[dict, float]:
    vector = {g: k * (log_docs - math.log(max(1.0, df[g]))) for g, k in counts.items()}
    return vector, math.sqrt(sum(v * v for v in vector.values()))


def cider_d(candidates: Sequence[str], references: Sequence[str], max_n: int = 4, sigma: float = 6.0) -> float:
    """Corpus CIDEr-D (one reference per candidate), x10 as coco-caption reports it."""
    cands, refs = [words(c) for c in candidates], [words(r) for r in references]
    if not refs:
        return 0.0
    log_docs = math.log(float(len(refs)))
    scores = np.zeros(len(cands))
    for n in range(1, max_n + 1):
        ref_counts = [ngrams(r, n) for r in refs]
        df = Counter(g for counts in ref_counts for g in counts)
        for i, (c, rc) in enumerate(zip(cands, ref_counts, strict=True)):
            vc, nc = _tfidf(ngrams(c, n), df, log_docs)
            vr, nr = _tfidf(rc, df, log_docs)
            dot = sum(min(v, vr[g]) * vr[g] for g, v in vc.items() if g in vr)
            if nc > 0 and nr > 0:
                penalty = math.exp(-((len(c) - len(refs[i])) ** 2) / (2 * sigma**2))
                scores[i] += penalty * dot / (nc * nr)
    return float(10.0 * scores.mean() / max_n)


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve of `scores` for binary `labels`; None if a class is absent (the
    runtime-side implementation, inference.calibration.auc, which models may use)."""
    return auc(scores, np.asarray(labels).astype(bool))


def macro_auc(probabilities: np.ndarray, labels: Sequence[int]) -> float | None:
    """One-vs-rest macro AUC over the classes present in `labels`."""
    y = np.asarray(labels)
    aucs = [roc_auc(probabilities[:, k], (y == k).astype(int)) for k in range(probabilities.shape[1])]
    aucs = [a for a in aucs if a is not None]
    return float(np.mean(aucs)) if aucs else None


def slice_hit(slice_index: int, ranges: Sequence[Sequence[int]], margin: int) -> bool:
    """Whether `slice_index` lies in any [lo, hi] range grown by `margin` slices."""
    return any(lo - margin <= slice_index <= hi + margin for lo, hi in ranges)


def slice_chance(ranges: Sequence[Sequence[int]], margin: int, count: int) -> float:
    """Chance that a uniformly random slice of `count` is a slice_hit."""
    hits = sum(slice_hit(z, ranges, margin) for z in range(count))
    return hits / count


def box_hit(row: float, col: float, box: Sequence[int], grow: float) -> bool:
    """Whether pixel (row, col) lies in box [x0, y0, x1, y1] grown by `grow` pixels."""
    x0, y0, x1, y1 = box
    return x0 - grow <= col <= x1 + grow and y0 - grow <= row <= y1 + grow


def box_chance(box: Sequence[int], grow: float, shape: tuple[int, int]) -> float:
    """Share of a (rows, columns) slice inside the grown box (chance of a random pixel)."""
    x0, y0, x1, y1 = box
    rows = min(shape[0] - 1, y1 + grow) - max(0, y0 - grow) + 1
    cols = min(shape[1] - 1, x1 + grow) - max(0, x0 - grow) + 1
    return max(0.0, rows) * max(0.0, cols) / (shape[0] * shape[1])


def _micro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, axis: int = -1) -> np.ndarray:
    """F1 of the summed counts (2 TP / (2 TP + FP + FN)); 0 where there is nothing to count."""
    tp, fp, fn = tp.sum(axis=axis), fp.sum(axis=axis), fn.sum(axis=axis)
    return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def _interval(samples: tuple[np.ndarray, ...], statistic, resamples: int, seed: int) -> tuple[float, float]:
    if len(samples[0]) < 2:
        value = float(statistic(*samples))
        return value, value
    found = bootstrap(samples, statistic, paired=True, vectorized=True, n_resamples=resamples,
                      method="percentile", confidence_level=0.95, random_state=seed)
    return float(found.confidence_interval.low), float(found.confidence_interval.high)


def f1_interval(counts: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the finding F1 when the studies are resampled; `counts` is (studies, 3):
    each study's true positives, false positives and false negatives."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    return _interval(tuple(counts.T), _micro_f1, resamples, seed)


def f1_difference(counts: np.ndarray, baseline: np.ndarray, resamples: int = 2000,
                  seed: int = 0) -> tuple[float, float, float]:
    """(F1 - baseline F1, and its 95 % interval) of two models scored on the same studies, in
    the same order: the studies are resampled together (paired), so their difficulty cancels."""
    a = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(baseline, dtype=np.float64).reshape(-1, 3)
    if a.shape != b.shape:
        raise ValueError(f"{len(a)} studies against {len(b)}: a paired comparison needs the same studies")

    def difference(*columns: np.ndarray, axis: int = -1) -> np.ndarray:
        return _micro_f1(*columns[:3], axis=axis) - _micro_f1(*columns[3:], axis=axis)

    samples = (*a.T, *b.T)
    low, high = _interval(samples, difference, resamples, seed)
    return float(difference(*samples)), low, high
