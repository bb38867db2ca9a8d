"""Editing a draft: AI sentences stay marked until a person acts; the counts say what happened."""

from __future__ import annotations

from app.report_document import ReportDocument


def _doc() -> ReportDocument:
    return ReportDocument.from_ai_sentences([
        ("FINDINGS", "A 12 mm solid nodule in the right upper lobe."),
        ("FINDINGS", "No pleural effusion."),
        ("IMPRESSION", "Right upper lobe nodule."),
    ])


def test_ai_sentences_need_review_until_accepted_or_edited():
    doc = _doc()
    assert doc.pending_review == 3
    doc.accept(1)
    doc.edit(0, "A 14 mm  solid nodule in the right upper lobe.")
    assert doc.pending_review == 1
    assert doc.entries[0].status == "edited" and doc.entries[0].ai_text.startswith("A 12 mm")
    assert doc.entries[1].status == "accepted"
    assert doc.entries[2].needs_review


def test_delete_hides_ai_text_but_keeps_the_record_and_counts():
    doc = _doc()
    doc.delete(1)
    doc.add("IMPRESSION", "Recommend CT follow-up in 3 months.")
    text = doc.to_text()
    assert "No pleural effusion." not in text
    assert text.endswith("Right upper lobe nodule. Recommend CT follow-up in 3 months.")
    assert doc.counts() == {"kept": 0, "edited": 0, "deleted": 1, "pending": 2, "added": 1}


def test_editing_a_sentence_to_nothing_deletes_it():
    doc = _doc()
    doc.edit(2, "   ")
    assert doc.entries[2].status == "deleted"
    assert doc.section_text("IMPRESSION") == ""
