"""Held-out evaluation of a model package through the real runtime (inference.runtime).

Each study is drafted end to end by ReportRuntime; the report is parsed back into findings
with the phantom report parser and scored against the phantom ground truth; the diagnosis
heads and the explanations (slice and in-plane pointing) are scored beside chance levels, and
the workstation's draft checks (app.draft_checks) are scored: where a head check fires, is the
head right? Must not import ui.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.draft_checks import contradictions, disagreements, unfinished
from inference.calibration import expected_calibration_error
from inference.preprocess import CTInput
from inference.result import ReportResult
from models.phantoms.report_parse import parse_report
from models.phantoms.truth import size_bucket
from models.train import metrics
from models.train.config import HELD_OUT_BASE, RENDER_RECIPE, SEVERITY_CLASSES
from models.train.data import ct_input, render_case, severity_index
from models.train.targets import mentions

FOCAL_TYPES = ("nodule", "effusion")
# Classes a finding's recall is broken down by: a nodule's size class (truth.size_bucket), else its grade.
CLASS_ORDER = ("<6 mm", "6-9 mm", "10-19 mm", ">=20 mm", "CT-1", "CT-2", "CT-3", "CT-4", "small", "mild",
               "moderate", "large", "severe")
LARGE_NODULE_MM = 10.0
HEAD_TYPES = {"nodule": "nodule", "effusion": "effusion", "covid_severity": "covid"}  # head -> finding type


@dataclass
class EvalStudy:
    """A held-out study: the CT, its ground-truth findings, reference report and labels."""

    name: str
    ct: CTInput
    findings: list[dict[str, Any]]
    report: str
    severity: int


def held_out_seed(seed: int, i: int) -> int:
    """Phantom seed of held-out study i (never a training seed: those are < HELD_OUT_BASE)."""
    return HELD_OUT_BASE + seed * 1_000_000 + i


def render_held_out(phantom_seed: int, size: int | None = None) -> EvalStudy:
    """One held-out phantom rendered in memory with the training recipe (32 thin slices)."""
    case = render_case(phantom_seed, size)
    return EvalStudy(f"phantom-{phantom_seed}", ct_input(case), [f.to_json() for f in case.findings],
                     case.report, severity_index(case.study["covid_severity"]))


def _save(study: EvalStudy, path: Path) -> None:
    meta = json.dumps({"name": study.name, "findings": study.findings, "report": study.report,
                       "severity": study.severity, "z": study.ct.z_spacing_mm,
                       "pixel": list(study.ct.pixel_spacing_mm)})
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, hu=np.rint(study.ct.hu).astype(np.int16), meta=np.array(meta))
    tmp.replace(path)


def _load(path: Path) -> EvalStudy:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        ct = CTInput(data["hu"], float(meta["z"]), tuple(meta["pixel"]))
    return EvalStudy(meta["name"], ct, meta["findings"], meta["report"], int(meta["severity"]))


def generated_studies(count: int, seed: int, size: int | None = None,
                      cache: Path | None = None) -> Iterator[EvalStudy]:
    """Held-out phantoms (seeds never used in training); with `cache`, renders are kept there
    (int16 HU, as a DICOM series would store them) and reused."""
    for i in range(count):
        phantom_seed = held_out_seed(seed, i)
        if cache is None:
            yield render_held_out(phantom_seed, size)
            continue
        path = Path(cache) / f"phantom-{phantom_seed}-{size or 'mix'}-{RENDER_RECIPE}.npz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _save(render_held_out(phantom_seed, size), path)
        yield _load(path)


def folder_studies(data: Path, count: int | None = None) -> Iterator[EvalStudy]:
    """Studies of a `medmpt phantom make` folder: each findings.json beside its DICOM series."""
    from app.dicom import choose_series, index_sources, load_volume
    from app.drafting import ct_input as volume_input

    truths = sorted(Path(data).rglob("findings.json"))
    if not truths:
        raise FileNotFoundError(f"no findings.json under {data}: not a phantom folder")
    for path in truths[:count]:
        truth = json.loads(path.read_text(encoding="utf-8"))
        choice = choose_series(index_sources(path.parent))
        volume = load_volume(choice.series)
        severity = truth.get("covid_severity") or truth.get("diagnosis", {}).get("covid_severity", "CT-0")
        where = path.parent.relative_to(data).as_posix()  # unique within DATA (names the study)
        name = path.parent.name if where == "." else where
        yield EvalStudy(name, volume_input(volume), truth["findings"], truth.get("report", ""),
                        severity_index(severity))


def truth_key(f: dict[str, Any]) -> tuple[Any, ...]:
    bucket = size_bucket(f["size_mm"]) if f["type"] == "nodule" and f.get("size_mm") else None
    return (f["type"], f.get("side"), f.get("lobe"), f.get("subtype"), bucket, f.get("severity"))


def match_findings(predicted: list[tuple], truth: list[tuple]) -> list[tuple[tuple, tuple]]:
    """Pairs (predicted, truth) of the same type, greedily by the most agreeing attributes."""
    pairs, left = [], list(truth)
    scored = []
    for p in predicted:
        for t in left:
            if p[0] == t[0]:
                scored.append((sum(a == b for a, b in zip(p[1:], t[1:], strict=True)), p, t))
    used_p: list[int] = []
    used_t: list[int] = []
    for _, p, t in sorted(scored, key=lambda s: -s[0]):
        if not any(p is q for q in used_p) and not any(t is q for q in used_t):
            pairs.append((p, t))
            used_p.append(p)
            used_t.append(t)
    return pairs


@dataclass
class Tally:
    """Running counts of every evaluation figure."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    exact_tp: int = 0
    located: list[bool] = field(default_factory=list)
    attributes: list[bool] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    severity_true: list[int] = field(default_factory=list)
    severity_prob: list[list[float]] = field(default_factory=list)
    binary: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: {"nodule": [], "effusion": []})
    largest_nodule_mm: list[float] = field(default_factory=list)  # per study, beside binary["nodule"]; 0: none
    slice_hits: list[bool] = field(default_factory=list)
    slice_chance: list[float] = field(default_factory=list)
    plane_hits: list[bool] = field(default_factory=list)
    plane_chance: list[float] = field(default_factory=list)
    by_type: dict[str, list[tuple[bool, float]]] = field(default_factory=dict)
    per_type: dict[str, list[int]] = field(default_factory=dict)  # type -> [tp, fp, fn]
    seconds: list[float] = field(default_factory=list)
    by_class: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # type -> class -> [found, true]
    # nodules of LARGE_NODULE_MM or more (a few pixels wide at the model input, or more): subtype -> [found, true]
    large_nodule_subtypes: dict[str, list[int]] = field(default_factory=dict)
    flagged: int = 0  # drafts with at least one check
    head_checks: dict[str, list[bool]] = field(default_factory=dict)  # head -> [head was right]
    self_contradictions: int = 0
    unfinished: int = 0  # drafts with a sentence stopped after its size ("There is a 9 mm.")
    study_findings: dict[str, list[int]] = field(default_factory=dict)  # study -> [tp, fp, fn]
    # study -> [exact tp, reported - exact tp, true - exact tp]: its micro F1 is the exact F1
    study_exact_findings: dict[str, list[int]] = field(default_factory=dict)


def score_findings(tally: Tally, text: str, findings: list[dict[str, Any]], study: str | None = None) -> None:
    """Score one report's findings into `tally`. With `study`, its type-level and exact
    [true pos., false pos., false neg.] are also kept by name (paired comparisons)."""
    predicted = parse_report(text).findings
    truth = [truth_key(f) for f in findings]
    pairs = match_findings(predicted, truth)
    counts = [len(pairs), len(predicted) - len(pairs), len(truth) - len(pairs)]
    tally.tp += counts[0]
    tally.fp += counts[1]
    tally.fn += counts[2]
    exact = sum(p == t for p, t in pairs)
    tally.exact_tp += exact
    if study is not None:
        tally.study_findings[study] = counts
        tally.study_exact_findings[study] = [exact, len(predicted) - exact, len(truth) - exact]
    for kind in {f[0] for f in predicted} | {t[0] for t in truth}:
        tp = sum(t[0] == kind for _, t in pairs)
        counts = tally.per_type.setdefault(kind, [0, 0, 0])
        counts[0] += tp
        counts[1] += sum(p[0] == kind for p in predicted) - tp
        counts[2] += sum(t[0] == kind for t in truth) - tp
    found = {id(t) for _, t in pairs}
    for t in truth:
        grade = t[4] if t[0] == "nodule" else t[5]
        if grade is not None:
            counts = tally.by_class.setdefault(t[0], {}).setdefault(str(grade), [0, 0])
            counts[0] += id(t) in found
            counts[1] += 1
    for t, f in zip(truth, findings, strict=True):
        if t[0] == "nodule" and float(f.get("size_mm") or 0) >= LARGE_NODULE_MM:
            counts = tally.large_nodule_subtypes.setdefault(str(t[3]), [0, 0])
            counts[0] += id(t) in found
            counts[1] += 1
    for p, t in pairs:
        if t[1] is not None and t[0] in FOCAL_TYPES:
            tally.located.append(p[1] == t[1] and p[2] == t[2])
        tally.attributes.append(p[3:] == t[3:])


def sampled_margin(original_indices: np.ndarray) -> int:
    """One sampled slice, in original slices (the largest gap between sampled slices, >= 1)."""
    present = np.unique(original_indices)
    return max(1, int(np.diff(present).max())) if len(present) > 1 else 1


def score_pointing(tally: Tally, result: ReportResult, findings: list[dict[str, Any]], grid: int = 7) -> None:
    """Slice and in-plane pointing of every positive sentence that names a true finding."""
    z_count = result.volume_shape[0]
    margin = sampled_margin(result.original_indices)
    for index, sentence in enumerate(result.sentences):
        said = [f for f in findings if f.get("slice_range") and mentions(sentence.text, f)]
        if not said:
            continue
        ranges = [f["slice_range"] for f in said]
        hit = metrics.slice_hit(sentence.most_relevant_slice, ranges, margin)
        chance = metrics.slice_chance(ranges, margin, z_count)
        tally.slice_hits.append(hit)
        tally.slice_chance.append(chance)
        for kind in sorted({f["type"] for f in said}):
            tally.by_type.setdefault(kind, []).append((hit, chance))
        focal = [f for f in said if f["type"] in FOCAL_TYPES and f.get("box")]
        if focal:
            _score_plane(tally, result, index, focal, grid)


def _score_plane(tally: Tally, result: ReportResult, index: int, focal: list[dict[str, Any]],
                 grid: int) -> None:
    z = result.sentences[index].most_relevant_slice
    heat = result.slice_heatmap(z, index)
    rows, cols = heat.shape
    grow = max(rows, cols) / grid  # one patch, in pixels
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    tally.plane_hits.append(any(metrics.box_hit(row, col, f["box"], grow) for f in focal))
    union = np.zeros((rows, cols), dtype=bool)
    for f in focal:
        x0, y0, x1, y1 = f["box"]
        union[max(0, int(y0 - grow)) : int(y1 + grow) + 1, max(0, int(x0 - grow)) : int(x1 + grow) + 1] = True
    tally.plane_chance.append(float(union.mean()))


def score_study(tally: Tally, study: EvalStudy, result: ReportResult, grid: int = 7) -> None:
    score_findings(tally, result.text, study.findings, study.name)
    tally.candidates.append(result.text)
    tally.references.append(study.report)
    severity = result.diagnosis.get("covid_severity", {})
    tally.severity_prob.append([severity.get(c, 0.0) for c in SEVERITY_CLASSES])
    tally.severity_true.append(study.severity)
    types = {f["type"] for f in study.findings}
    for name in ("nodule", "effusion"):
        probability = result.diagnosis.get(name, {}).get("present", 0.0)
        tally.binary[name].append((probability, int(name in types)))
    tally.largest_nodule_mm.append(largest_nodule_mm(study.findings))
    score_pointing(tally, result, study.findings, grid)
    score_checks(tally, result, types)
    tally.seconds.append(result.timings.total_ms / 1000.0)


def score_checks(tally: Tally, result: ReportResult, types: set[str]) -> None:
    """The draft checks the workstation would show: a head check is right when the head, not
    the text, agrees with the truth; a self-contradiction is a defect of the text either way."""
    heads = disagreements([s.text for s in result.sentences], result.diagnosis)
    contradicted = contradictions((s.section, s.text) for s in result.sentences)
    short = unfinished(s.text for s in result.sentences)
    tally.flagged += bool(heads or contradicted or short)
    tally.self_contradictions += len(contradicted)
    tally.unfinished += short is not None
    for d in heads:
        tally.head_checks.setdefault(d.head, []).append((HEAD_TYPES[d.head] in types) != d.text_says_present)


def evaluate(runtime, studies: Iterator[EvalStudy], log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Draft every study with `runtime` (a ReportRuntime) and return the figures."""
    tally = Tally()
    architecture = runtime.package.manifest.get("architecture", {})
    grid = int(architecture.get("image_size", 224)) // int(architecture.get("patch_size", 32))
    for count, study in enumerate(studies, start=1):
        score_study(tally, study, runtime.draft_sync(study.ct), grid)
        if log and count % 25 == 0:
            log(f"evaluated {count} studies")
    return summarise(tally)


def _mean(values: list) -> float | None:
    return float(np.mean(values)) if values else None


def summarise(t: Tally) -> dict[str, Any]:
    precision = t.tp / (t.tp + t.fp) if t.tp + t.fp else 0.0
    recall = t.tp / (t.tp + t.fn) if t.tp + t.fn else 0.0
    exact_p = t.exact_tp / (t.tp + t.fp) if t.tp + t.fp else 0.0
    exact_r = t.exact_tp / (t.tp + t.fn) if t.tp + t.fn else 0.0
    probs = np.asarray(t.severity_prob) if t.severity_prob else np.zeros((0, 4))
    severity_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    out: dict[str, Any] = {
        "studies": len(t.candidates),
        "finding_precision": precision, "finding_recall": recall, "finding_f1": _f1(precision, recall),
        "finding_f1_ci": list(metrics.f1_interval(list(t.study_findings.values()))) if t.study_findings else None,
        "exact_finding_f1": _f1(exact_p, exact_r),
        "exact_finding_f1_ci": (list(metrics.f1_interval(list(t.study_exact_findings.values())))
                                if t.study_exact_findings else None),
        "side_lobe_accuracy": _mean(t.located), "attribute_accuracy": _mean(t.attributes),
        "bleu4": metrics.bleu(t.candidates, t.references), "rouge_l": metrics.rouge_l(t.candidates, t.references),
        "cider_d": metrics.cider_d(t.candidates, t.references),
        "severity_accuracy": float((severity_pred == np.asarray(t.severity_true)).mean()) if len(probs) else None,
        "severity_macro_auc": metrics.macro_auc(probs, t.severity_true) if len(probs) else None,
        "slice_pointing": _mean(t.slice_hits), "slice_pointing_chance": _mean(t.slice_chance),
        "slice_pointing_sentences": len(t.slice_hits),
        "inplane_pointing": _mean(t.plane_hits), "inplane_pointing_chance": _mean(t.plane_chance),
        "inplane_pointing_sentences": len(t.plane_hits),
        "slice_pointing_by_type": {k: [_mean([h for h, _ in v]), _mean([c for _, c in v]), len(v)]
                                   for k, v in sorted(t.by_type.items())},
        "finding_by_type": {k: _type_figures(*v) for k, v in sorted(t.per_type.items())},
        "seconds_per_study": _mean(t.seconds),
        "recall_by_class": {kind: dict(sorted(classes.items(), key=lambda kv: _class_rank(kv[0])))
                            for kind, classes in sorted(t.by_class.items())},
        "large_nodules_by_subtype": dict(sorted(t.large_nodule_subtypes.items())),
        "checks": {"drafts_flagged": t.flagged, "self_contradictions": t.self_contradictions,
                   "unfinished_drafts": t.unfinished,
                   "head_checks": {k: [sum(v), len(v)] for k, v in sorted(t.head_checks.items())}},
        "study_findings": dict(t.study_findings),  # for paired comparisons (`medmpt eval --compare`)
        "study_exact_findings": dict(t.study_exact_findings),
    }
    for name, pairs in t.binary.items():
        scores, labels = [p for p, _ in pairs], [y for _, y in pairs]
        out[f"{name}_auc"] = metrics.roc_auc(scores, labels)
        out[f"{name}_accuracy"] = _mean([(p >= 0.5) == bool(y) for p, y in pairs])
        two_class = np.stack([1.0 - np.asarray(scores, dtype=np.float64), np.asarray(scores, dtype=np.float64)], axis=1)
        out[f"{name}_ece"] = expected_calibration_error(two_class, np.asarray(labels, dtype=int)) if pairs else None
    out["nodule_auc_10mm"] = large_nodule_auc(t, LARGE_NODULE_MM)
    return out


def largest_nodule_mm(findings: list[dict[str, Any]]) -> float:
    """The size of a study's largest nodule (0 when it has none)."""
    return max([float(f.get("size_mm") or 0) for f in findings if f["type"] == "nodule"] or [0.0])


def large_nodule_auc(t: Tally, mm: float = 10.0) -> float | None:
    """The nodule head's AUC for studies whose largest nodule is `mm` or more against studies
    without one (studies with only smaller nodules left out): what it does where nodules are
    more than a few pixels across at the model input."""
    if len(t.largest_nodule_mm) != len(t.binary["nodule"]):
        return None
    pairs = [(p, y) for (p, y), size in zip(t.binary["nodule"], t.largest_nodule_mm, strict=True) if not y or size >= mm]
    return metrics.roc_auc([p for p, _ in pairs], [y for _, y in pairs]) if pairs else None


def _class_rank(name: str) -> tuple[int, str]:
    return (CLASS_ORDER.index(name) if name in CLASS_ORDER else len(CLASS_ORDER), name)


def _type_figures(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1 of one finding type, with the counts behind them."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
            "true": tp + fn, "reported": tp + fp}


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0
