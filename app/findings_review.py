"""Clinicians' review of AI findings: one item per AI finding or diagnosis, agree / disagree.

Qt-free. Items come from a ReportDraft: first what loading found wrong with the series it was
drafted on (a gap, undecodable images, missing rescale), then each FINDINGS sentence that states a
finding (not an explicit negative), each diagnosis head's most likely class, and each of the
draft's checks (app.draft_checks: its text against its heads or against itself). A verdict
records who and when.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from app.draft_checks import is_negative
from app.drafting import ReportDraft


@dataclass(frozen=True)
class ReviewItem:
    kind: str  # "series" (a problem of the input), "finding", "diagnosis" or "check" (app.draft_checks)
    label: str
    evidence_slice: int | None  # original slice index to jump to
    sentence: int | None = None  # index into the draft's sentences
    verdict: str | None = None  # "agree" | "disagree" | None
    reviewer: str = ""
    when: str = ""


def review_items(draft: ReportDraft, head_notes: Mapping[str, str] | None = None) -> list[ReviewItem]:
    """The draft's review items; `head_notes` (app.ai_service.head_note) say beside each
    diagnosis how far its head's probabilities can be trusted."""
    result = draft.result
    items = [ReviewItem("series", problem, None) for problem in draft.series_problems]
    items += [
        ReviewItem("finding", s.text, s.most_relevant_slice, i)
        for i, s in enumerate(result.sentences)
        if s.section == "FINDINGS" and not is_negative(s.text)
    ]
    report_slice = int(result.report_relevance.argmax()) if result.sentences else None
    for head, classes in result.diagnosis.items():
        name, p = max(classes.items(), key=lambda kv: kv[1])
        note = (head_notes or {}).get(head)
        label = f"{head.replace('_', ' ')}: {name} ({p:.0%})" + (f" \u2014 {note}" if note else "")
        items.append(ReviewItem("diagnosis", label, report_slice))
    for message in draft.checks:
        items.append(ReviewItem("check", message, report_slice))
    return items


def record_verdict(item: ReviewItem, verdict: str, reviewer: str) -> ReviewItem:
    if verdict not in ("agree", "disagree"):
        raise ValueError(f"verdict must be 'agree' or 'disagree', not {verdict!r}")
    if not reviewer.strip():
        raise ValueError("a verdict needs the reviewer's name")
    return replace(item, verdict=verdict, reviewer=reviewer.strip(),
                   when=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
