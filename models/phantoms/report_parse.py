"""Structured findings back from a report's text (for evaluating generated reports). Stdlib only.

It reads the phrasing report.py writes (and tolerates small departures: case, spacing, missing
sections). It returns the same key tuples as truth.Finding.key(), plus the explicit negatives.
Must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from models.phantoms.truth import LOBE_NAMES, NODULE_SUBTYPES, size_bucket

_LOBE_BY_NAME = {name: code for code, name in LOBE_NAMES.items()}
_COVID_BY_WORD = {"mild": "CT-1", "moderate": "CT-2", "severe": "CT-3", "critical": "CT-4"}
_SEVERITY = {"mild": "mild", "mildly": "mild", "moderate": "moderate", "moderately": "moderate",
             "severe": "severe", "severely": "severe"}


@dataclass
class ParsedReport:
    """Finding keys (type, side, lobe, subtype, size bucket, severity) and negated finding types."""

    findings: list[tuple[Any, ...]] = field(default_factory=list)
    negatives: set[str] = field(default_factory=set)
    unparsed: list[str] = field(default_factory=list)


def _sections(text: str) -> tuple[str, str]:
    """(findings text, impression text); a report without headings is all findings."""
    low = text.lower()
    i = low.find("impression:")
    body, impression = (text[:i], text[i + len("impression:"):]) if i >= 0 else (text, "")
    j = body.lower().find("findings:")
    return (body[j + len("findings:"):] if j >= 0 else body), impression


def _sentences(section: str) -> list[str]:
    return [s.strip().lower() for s in re.split(r"\.(?:\s+|$)", section) if s.strip()]


def _is_negative(sentence: str) -> bool:
    return bool(re.match(r"(no|there is no|there are no)\b", sentence)) or "normal" in sentence


def _severity(sentence: str) -> str | None:
    return next((_SEVERITY[w] for w in re.findall(r"[a-z]+", sentence) if w in _SEVERITY), None)


def _nodule(sentence: str) -> tuple[Any, ...] | None:
    lobe = re.search(r"(right|left) (upper|middle|lower) lobe", sentence)
    size = re.search(r"(\d+)\s*mm", sentence)
    subtype = next((s for s in sorted(NODULE_SUBTYPES, key=len, reverse=True)
                    if re.search(rf"(?<![a-z-]){s}\b", sentence)), None)
    if not lobe:
        return None
    code = _LOBE_BY_NAME[lobe.group(0)]
    bucket = size_bucket(float(size.group(1))) if size else None
    return ("nodule", lobe.group(1), code, subtype, bucket, None)


def _effusions(sentence: str) -> list[tuple[Any, ...]]:
    size = next((s for s in ("small", "moderate", "large") if s in sentence), None)
    if "bilateral" in sentence or "both" in sentence:
        sides = ["right", "left"]
    else:
        sides = [s for s in ("right", "left") if s in sentence]
    return [("effusion", side, None, None, None, size) for side in sides]


def _covid(sentence: str) -> tuple[Any, ...]:
    word = next((w for w in _COVID_BY_WORD if re.search(rf"\b{w}\b", sentence)), None)
    subtype = "consolidation" if "consolidation" in sentence else "ground-glass"
    return ("covid", "both", None, subtype, None, _COVID_BY_WORD.get(word or ""))


def _parse_sentence(s: str, out: ParsedReport) -> None:
    if "lungs are clear" in s:
        out.negatives |= {"covid", "emphysema"}
    elif "nodule" in s:
        if _is_negative(s):
            out.negatives.add("nodule")
        elif (key := _nodule(s)) is not None:
            out.findings.append(key)
        else:
            out.unparsed.append(s)
    elif "pleural" in s:
        (out.negatives.add("effusion") if _is_negative(s) else out.findings.extend(_effusions(s)))
    elif any(w in s for w in ("ground-glass", "consolidation", "airspace")):
        (out.negatives.add("covid") if _is_negative(s) else out.findings.append(_covid(s)))
    elif "emphysema" in s:
        if _is_negative(s):
            out.negatives.add("emphysema")
        else:
            out.findings.append(("emphysema", "both", None, None, None, _severity(s)))
    elif "heart" in s or "cardiomegaly" in s:
        if _is_negative(s):
            out.negatives.add("cardiomegaly")
        else:
            out.findings.append(("cardiomegaly", None, None, None, None, _severity(s)))
    else:
        out.unparsed.append(s)


def parse_report(text: str) -> ParsedReport:
    """Parse a 'FINDINGS: ... IMPRESSION: ...' report into finding keys and negatives."""
    findings_text, impression = _sections(text)
    out = ParsedReport()
    for sentence in _sentences(findings_text):
        _parse_sentence(sentence, out)
    ct_class = re.search(r"\bct-([0-4])\b", impression.lower())
    if ct_class:
        level = f"CT-{ct_class.group(1)}"
        out.findings = [(*k[:5], level) if k[0] == "covid" else k for k in out.findings]
        if level != "CT-0" and not any(k[0] == "covid" for k in out.findings):
            out.findings.append(("covid", "both", None, None, None, level))
    return out

