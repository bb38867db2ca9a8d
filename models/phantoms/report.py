"""English radiology report text from phantom ground truth, with seeded phrasing. Stdlib + numpy.

The vocabulary is small and regular so a ~2k WordPiece tokenizer covers it and every report fits
120 tokens. Each sentence ends with '.', and no '.' appears inside a sentence (the parser in
report_parse.py splits on it). Must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

import numpy as np

from models.phantoms.truth import LOBE_NAMES, Finding

_ADVERB = {"mild": "mildly", "moderate": "moderately", "severe": "severely"}
_COVID_WORD = {"CT-1": "mild", "CT-2": "moderate", "CT-3": "severe", "CT-4": "critical"}
_COVID_RANGE = {"CT-1": "less than 25 %", "CT-2": "25 to 50 %", "CT-3": "50 to 75 %",
                "CT-4": "more than 75 %"}

_NEGATIVES = {
    "covid": ("No ground-glass opacity or consolidation.", "No consolidation or ground-glass opacity.",
              "There is no airspace opacity."),
    "nodule": ("No pulmonary nodule.", "No pulmonary nodules.", "There is no pulmonary nodule."),
    "emphysema": ("No emphysema.", "There is no emphysema."),
    "effusion": ("No pleural effusion.", "There is no pleural effusion.", "No pleural fluid."),
    "cardiomegaly": ("Heart size is normal.", "The heart is normal in size.", "Normal heart size."),
}
_NORMAL_IMPRESSION = ("No acute cardiopulmonary abnormality.", "Normal CT of the chest.",
                      "No significant abnormality.")


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def article(number: int) -> str:
    """'a' or 'an' before a number as it is read aloud: an 8, an 11, an 18, an 80; a 6, a 28."""
    return "an" if str(number).startswith("8") or number in (11, 18) else "a"


def _nodule_sentence(f: Finding, rng: np.random.Generator) -> str:
    size, sub, lobe = int(round(f.size_mm or 0)), f.subtype, LOBE_NAMES[f.lobe or ""]
    return _pick(rng, (
        f"{_cap(article(size))} {size} mm {sub} nodule in the {lobe}.",
        f"There is {article(size)} {size} mm {sub} nodule in the {lobe}.",
        f"{_cap(sub or '')} nodule in the {lobe} measuring {size} mm.",
    ))


def _covid_sentence(f: Finding, rng: np.random.Generator) -> str:
    word, extent = _COVID_WORD[f.severity or ""], _COVID_RANGE[f.severity or ""]
    what = "ground-glass opacities with consolidation" if f.subtype == "consolidation" else (
        "ground-glass opacities")
    return _pick(rng, (
        f"{_cap(word)} bilateral peripheral {what} involving {extent} of the lungs.",
        f"There are {word} peripheral {what} in both lungs involving {extent} of the lungs.",
        f"Bilateral peripheral {what} of {word} extent involving {extent} of the lungs.",
    ))


def _effusion_sentences(effusions: list[Finding], rng: np.random.Generator) -> list[str]:
    if len(effusions) == 2 and effusions[0].severity == effusions[1].severity:
        size = effusions[0].severity or ""
        return [_pick(rng, (f"{_cap(size)} bilateral pleural effusions.",
                            f"There are {size} bilateral pleural effusions."))]
    out = []
    for f in sorted(effusions, key=lambda e: e.side != "right"):
        size, side = f.severity or "", f.side or ""
        out.append(_pick(rng, (f"{_cap(size)} {side} pleural effusion.",
                               f"There is a {size} {side} pleural effusion.",
                               f"A {size} pleural effusion on the {side}.")))
    return out


def _findings_section(findings: list[Finding], rng: np.random.Generator) -> list[str]:
    by_type = {t: [f for f in findings if f.type == t] for t in _NEGATIVES}
    out: list[str] = []
    for f in by_type["covid"]:
        out.append(_covid_sentence(f, rng))
    out += [_nodule_sentence(f, rng) for f in sorted(by_type["nodule"], key=lambda f: f.lobe or "")]
    for f in by_type["emphysema"]:
        sev = f.severity or ""
        out.append(_pick(rng, (f"{_cap(sev)} centrilobular emphysema in the upper lobes.",
                               f"There is {sev} emphysema predominantly in the upper lobes.")))
    out += _effusion_sentences(by_type["effusion"], rng) if by_type["effusion"] else []
    for f in by_type["cardiomegaly"]:
        sev = f.severity or ""
        out.append(_pick(rng, (f"The heart is {_ADVERB[sev]} enlarged.", f"{_cap(sev)} cardiomegaly.")))
    negatives = [t for t in ("covid", "nodule", "emphysema", "effusion", "cardiomegaly") if not by_type[t]]
    if set(negatives) >= {"covid", "nodule", "emphysema"} and rng.random() < 0.5:
        negatives = [t for t in negatives if t not in ("covid", "emphysema")]
        out.insert(0, "The lungs are clear.")
    out += [_pick(rng, _NEGATIVES[t]) for t in negatives]
    return out


def _impression(findings: list[Finding], rng: np.random.Generator) -> list[str]:
    out: list[str] = []
    for f in (f for f in findings if f.type == "covid"):
        word = _COVID_WORD[f.severity or ""]
        out.append(_pick(rng, (f"{_cap(word)} COVID-19 pneumonia pattern, {f.severity}.",
                               f"Findings typical of COVID-19 pneumonia, {word}, {f.severity}.")))
    nodules = [f for f in findings if f.type == "nodule"]
    lobes = sorted({LOBE_NAMES[f.lobe or ""] for f in nodules})
    if lobes:
        noun = "nodule" if len(nodules) == 1 else "nodules"
        out.append(f"Pulmonary {noun} in the {' and '.join(lobes)}.")
    for f in (f for f in findings if f.type == "emphysema"):
        out.append(f"{_cap(f.severity or '')} emphysema.")
    sides = sorted({f.side or "" for f in findings if f.type == "effusion"})
    if sides:
        out.append("Bilateral pleural effusions." if len(sides) == 2 else f"{_cap(sides[0])} pleural effusion.")
    if any(f.type == "cardiomegaly" for f in findings):
        out.append("Cardiomegaly.")
    return out or [_pick(rng, _NORMAL_IMPRESSION)]


def write_report(findings: list[Finding], rng: np.random.Generator) -> str:
    """'FINDINGS: ... IMPRESSION: ...' for the ground truth, phrased by `rng`."""
    body = " ".join(_findings_section(findings, rng))
    return f"FINDINGS: {body} IMPRESSION: {' '.join(_impression(findings, rng))}"


def count_tokens(text: str) -> int:
    """A quick upper-bound-ish token count: words, numbers and punctuation marks."""
    import re

    return len(re.findall(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]", text))
