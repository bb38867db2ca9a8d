"""Paired analysis of the reader study (AI-assisted minus unassisted), plots and the iMRMC export.

scipy for the Wilcoxon signed-rank test and the bootstrap CI, matplotlib (Agg) for PNGs.
Must not import Qt.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from app.reader_study.protocol import Protocol

OUTCOMES = ("total_s", "active_s", "first_edit_s")


@dataclass(frozen=True)
class PairedResult:
    outcome: str
    paired_by: str  # "reader x case" (crossover) or "reader" (per-reader means)
    n_pairs: int
    median_difference: float  # ai_assisted - unassisted
    ci_low: float
    ci_high: float
    wilcoxon_statistic: float
    wilcoxon_p: float


def paired_differences(rows: list[dict], outcome: str) -> tuple[np.ndarray, str]:
    """AI-assisted minus unassisted per (reader, case) when both were read, else per reader means."""
    values: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for row in rows:
        value = row.get(outcome)
        if row.get("signed") and value is not None and not math.isnan(float(value)):
            values[(row["reader"], row["case_id"])][row["arm"]] = float(value)
    pairs = [v["ai_assisted"] - v["unassisted"] for v in values.values() if len(v) == 2]
    if pairs:
        return np.asarray(pairs), "reader x case"
    by_reader: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (reader, _case), v in values.items():
        for arm, x in v.items():
            by_reader[reader][arm].append(x)
    diffs = [np.mean(a["ai_assisted"]) - np.mean(a["unassisted"]) for a in by_reader.values() if len(a) == 2]
    return np.asarray(diffs, dtype=float), "reader"


def bootstrap_median_ci(diffs: np.ndarray, seed: int = 0, reps: int = 4000) -> tuple[float, float]:
    """Percentile bootstrap 95 % CI of the median difference (scipy.stats.bootstrap)."""
    diffs = np.asarray(diffs, dtype=float)
    if len(diffs) == 0:
        return math.nan, math.nan
    if len(diffs) == 1 or np.all(diffs == diffs[0]):  # every resample has the same median
        return float(diffs[0]), float(diffs[0])
    found = stats.bootstrap((diffs,), np.median, n_resamples=reps, method="percentile",
                            confidence_level=0.95, random_state=seed)
    return float(found.confidence_interval.low), float(found.confidence_interval.high)


def compare(rows: list[dict], outcome: str, seed: int = 0) -> PairedResult:
    diffs, paired_by = paired_differences(rows, outcome)
    if len(diffs) == 0:
        return PairedResult(outcome, paired_by, 0, *([math.nan] * 5))
    low, high = bootstrap_median_ci(diffs, seed)
    statistic = p = math.nan
    if np.any(diffs != 0):
        test = stats.wilcoxon(diffs)
        statistic, p = float(test.statistic), float(test.pvalue)
    return PairedResult(outcome, paired_by, len(diffs), float(np.median(diffs)), low, high, statistic, p)


def plot_time_per_arm(rows: list[dict], outcome: str, path: Path) -> Path:
    """Per reader, the outcome of every case in each arm (points) and the arm medians (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    readers = sorted({r["reader"] for r in rows})
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(readers)), 4))
    for arm, offset, colour in (("unassisted", -0.18, "#4c72b0"), ("ai_assisted", 0.18, "#dd8452")):
        medians = []
        for i, reader in enumerate(readers):
            ys = [float(r[outcome]) for r in rows if r["reader"] == reader and r["arm"] == arm
                  and r.get(outcome) is not None and not math.isnan(float(r[outcome]))]
            ax.scatter([i + offset] * len(ys), ys, color=colour, s=14, zorder=3)
            medians.append(float(np.median(ys)) if ys else 0.0)
        ax.bar(np.arange(len(readers)) + offset, medians, width=0.32, color=colour, alpha=0.5, label=arm)
    ax.set_xticks(range(len(readers)), readers)
    ax.set_ylabel(f"{outcome} (s)")
    ax.set_title("Reporting time per arm and reader")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_edit_distance(rows: list[dict], path: Path) -> Path:
    """Character- and word-level edit distance of the AI-assisted reports, per reader."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ai = [r for r in rows if r["arm"] == "ai_assisted" and not math.isnan(float(r["char_distance"]))]
    readers = sorted({r["reader"] for r in ai})
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax, key in zip(axes, ("char_distance", "word_distance"), strict=True):
        data = [[float(r[key]) for r in ai if r["reader"] == reader] for reader in readers]
        if data:
            ax.boxplot(data)
            ax.set_xticks(range(1, len(readers) + 1), readers)
        ax.set_title(key.replace("_", " ") + " (draft \u2192 signed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_imrmc(rows: list[dict], protocol: Protocol, path: Path) -> Path:
    """An iMRMC input file: the protocol's `imrmc_score` answer as the per-case score, with each
    case's truth (0/1) as readerID -1 lines. Raises ValueError when a case lacks truth or score."""
    question = protocol.imrmc_score
    if not question:
        raise ValueError("the protocol sets no imrmc_score question: no iMRMC export")
    truth = {c.case_id: c.truth for c in protocol.cases}
    if any(t is None for t in truth.values()):
        raise ValueError("every case needs 'truth = 0 or 1' in the protocol for the iMRMC export")
    case_number = {c.case_id: i for i, c in enumerate(protocol.cases, start=1)}
    reader_number = {r: i for i, r in enumerate(protocol.readers, start=1)}
    modality = {"unassisted": 1, "ai_assisted": 2}
    lines = []
    for row in rows:
        score = row.get(f"answer_{question}")
        if row.get("signed") and score is not None and not (isinstance(score, float) and math.isnan(score)):
            lines.append(f"{reader_number[row['reader']]},{case_number[row['case_id']]},{modality[row['arm']]},{int(score)}")
    if not lines:
        raise ValueError(f"no signed case has an answer to {question!r}: no iMRMC export")
    n1 = sum(1 for t in truth.values() if t == 1)
    header = [
        f"Study {protocol.study_id}: MedMPT reader study, score = answer to '{question}'",
        "Modality 1 = unassisted, modality 2 = AI-assisted; readers and cases numbered as in the protocol.",
        f"NR: {len(protocol.readers)}", f"N0: {len(truth) - n1}", f"N1: {n1}", "NM: 2", "", "BEGIN DATA:",
    ]
    truth_lines = [f"-1,{case_number[c]},0,{t}" for c, t in truth.items()]
    path.write_text("\n".join(header + truth_lines + lines) + "\n", encoding="utf-8")
    return path


def analyse(rows: list[dict], protocol: Protocol, out_dir: Path) -> dict:
    """Paired comparisons, plots and the iMRMC file under `out_dir`; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [compare(rows, outcome, protocol.seed) for outcome in OUTCOMES]
    summary: dict = {"study_id": protocol.study_id, "comparisons": [asdict(r) for r in results], "files": []}
    summary["files"].append(str(plot_time_per_arm(rows, "active_s", out_dir / "time_per_arm.png")))
    summary["files"].append(str(plot_edit_distance(rows, out_dir / "edit_distance.png")))
    try:
        summary["files"].append(str(write_imrmc(rows, protocol, out_dir / f"{protocol.study_id}.imrmc")))
    except ValueError as exc:
        summary["imrmc_skipped"] = str(exc)
    (out_dir / "analysis.json").write_text(json.dumps(_no_nan(summary), indent=2), encoding="utf-8")
    return summary


def _no_nan(value):
    """NaN as JSON null (json.dumps would write the invalid token NaN)."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value
