"""Reports written from ground truth parse back to the same findings, and stay short."""

from __future__ import annotations

import re

import numpy as np

from models.phantoms import count_tokens, parse_report, report_corpus, write_report
from models.phantoms.truth import FINDING_TYPES, plan_findings, sample_plan


def _round_trip(findings, rng):
    text = write_report(findings, rng)
    parsed = parse_report(text)
    assert sorted(map(repr, parsed.findings)) == sorted(repr(f.key()) for f in findings), text
    assert parsed.negatives == set(FINDING_TYPES) - {f.type for f in findings}, text
    assert not parsed.unparsed, text
    return text


def test_writer_parser_round_trip_over_many_seeds():
    texts = set()
    for seed in range(400):
        rng = np.random.default_rng(seed)
        texts.add(_round_trip(plan_findings(sample_plan(rng)), rng))
    assert len(texts) > 300, "phrasing and case mix vary with the seed"


def test_round_trip_on_rendered_cases(planned_cases):
    for case in planned_cases.values():
        parsed = parse_report(case.report)
        assert sorted(map(repr, parsed.findings)) == sorted(repr(f.key()) for f in case.findings)
        _round_trip(case.findings, np.random.default_rng(1))


def test_report_shape_and_length():
    corpus = report_corpus(2000, seed=3)
    assert corpus == report_corpus(2000, seed=3) and corpus != report_corpus(2000, seed=4)
    for text in corpus:
        assert re.fullmatch(r"FINDINGS: .+\. IMPRESSION: .+\.", text)
        assert count_tokens(text) <= 120
    joined = " ".join(corpus)
    for phrase in ("No pleural effusion.", "pulmonary nodule", "CT-1", "CT-3", "emphysema",
                   "cardiomegaly", "right upper lobe", "left lower lobe", "mm"):
        assert phrase in joined
    vocabulary = set(re.findall(r"[A-Za-z]+", joined.lower()))
    assert len(vocabulary) < 150, "small, regular vocabulary"


def test_the_article_before_a_size_is_read_as_spoken():
    """'an 8 mm', 'an 11 mm', 'an 18 mm' nodule; 'a' before every other size the phantoms draw."""
    corpus = " ".join(report_corpus(3000, seed=5))
    found = re.findall(r"\b([Aa]n?) (\d+) mm", corpus)
    assert {int(n) for _, n in found} >= {8, 11, 18, 6, 28}
    for word, number in found:
        assert word.lower() == ("an" if number in ("8", "11", "18") else "a"), f"{word} {number} mm"


def test_normal_report_states_negatives():
    text = write_report([], np.random.default_rng(0))
    parsed = parse_report(text)
    assert parsed.findings == [] and parsed.negatives >= {"nodule", "effusion", "cardiomegaly"}


def test_parser_survives_free_text():
    for text in ("", "FINDINGS:", "IMPRESSION: CT-2.", "Something odd. Nodule somewhere.",
                 "findings: small left pleural effusion. impression: left pleural effusion."):
        parsed = parse_report(text)
        assert isinstance(parsed.findings, list)
    assert parse_report("findings: small left pleural effusion.").findings == [
        ("effusion", "left", None, None, None, "small")]
    assert ("covid", "both", None, None, None, "CT-2") in parse_report("IMPRESSION: CT-2.").findings


def test_the_draft_self_checks_raise_nothing_on_reference_reports():
    """The workstation's contradiction check (app.draft_checks) must not cry wolf: none of 500
    reports written from ground truth, with every phrasing, contradicts itself."""
    from app.draft_checks import contradictions
    from inference.text import split_report

    for text in report_corpus(500, seed=11):
        sentences = split_report(text, [])[2]
        assert contradictions((s.section, s.text) for s in sentences) == [], text
