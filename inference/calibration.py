"""Temperature scaling of the diagnosis heads: probabilities a clinician can read as probabilities.

A head trained to a low loss on a few thousand studies says 0 % or 100 % on studies it has never
seen, even where it is right only a little more often than chance. Temperature scaling (Guo et
al., "On Calibration of Modern Neural Networks", ICML 2017) divides the head's logits by one
number T >= 1 fitted on studies the model never trained on; the ranking of the classes (hence the
argmax and the AUC) is unchanged, but the probabilities match how often the head is right. The
graphs output probabilities, so log(p) stands in for the logits (softmax is shift-invariant).

`fit_temperature` minimises the negative log-likelihood over T; `calibration_figures` gives the
figures a calibration is judged by (NLL, expected calibration error, AUC or accuracy). numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

FLOOR = 1e-12  # probabilities are clamped here before the log (float32 softmax can give 0)
# Only ever soften: on a fitting set the head already separates perfectly (e.g. severity on
# phantoms) the NLL keeps falling as T -> 0, and a clinical tool must not make a head surer than
# it was trained to be.
T_MIN, T_MAX = 1.0, 100.0
ECE_BINS = 10


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(…, C) probabilities -> the same with the underlying logits divided by `temperature`."""
    p = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return p
    logits = np.log(np.clip(p, FLOOR, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: Sequence[int]) -> float:
    """Mean -log p(true class) over the studies."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], FLOOR, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, labels: Sequence[int]) -> float:
    """The T in [T_MIN, T_MAX] that minimises the NLL of the scaled probabilities (golden-section
    search on log T; the NLL is convex in 1/T)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError("fit_temperature needs (N, C) probabilities and N labels, N > 0")

    def loss(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(p, math.exp(log_t)), y)

    lo, hi = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(80):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(math.exp((lo + hi) / 2))


def expected_calibration_error(probabilities: np.ndarray, labels: Sequence[int], bins: int = ECE_BINS) -> float:
    """ECE: the gap between confidence (the top class's probability) and accuracy, averaged over
    `bins` equal-width confidence bins weighted by their share of the studies."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    confidence, predicted = p.max(axis=-1), p.argmax(axis=-1)
    correct = (predicted == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            error += chosen.mean() * abs(confidence[chosen].mean() - correct[chosen].mean())
    return float(error)


def auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def calibration_figures(probabilities: np.ndarray, labels: Sequence[int], temperature: float) -> dict[str, float | None]:
    """NLL and ECE before and after scaling by `temperature`, and how well the head separates the
    classes (AUC of the last class for a two-class head, else accuracy); unchanged by scaling."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    scaled = apply_temperature(p, temperature)
    figures: dict[str, float | None] = {
        "temperature": round(float(temperature), 4),
        "studies": len(y),
        "nll_before": round(negative_log_likelihood(p, y), 4),
        "nll_after": round(negative_log_likelihood(scaled, y), 4),
        "ece_before": round(expected_calibration_error(p, y), 4),
        "ece_after": round(expected_calibration_error(scaled, y), 4),
    }
    if p.shape[-1] == 2:
        value = auc(p[:, 1], y == 1)
        figures["auc"] = None if value is None else round(value, 4)
    else:
        figures["accuracy"] = round(float((p.argmax(-1) == y).mean()), 4)
    return figures
