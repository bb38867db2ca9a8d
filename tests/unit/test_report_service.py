"""The report workflow over the store: restore with AI markings, autosave, sign, and never
saving into another series' report."""

from __future__ import annotations

import numpy as np
import pytest

from app.report_document import ReportDocument
from app.report_service import ReportService, key_of, restore_document
from app.reports import SignedReportError
from app.tasks import run_sync
from app.volume import Volume


def _volume(series: str) -> Volume:
    hu = np.full((40, 64, 64), -1000, np.int16)
    hu[:, 8:56, 8:56] = 40
    hu[:, 16:48, 12:30] = -850
    hu[:, 16:48, 34:52] = -850
    uids = tuple(f"1.2.3.{series}.{i}" for i in range(40))
    return Volume(hu, (5.0, 5.0, 5.0), (0.0, 0.0, 0.0), np.eye(3), StudyInstanceUID="1.2.3",
                  SeriesInstanceUID=f"1.2.3.{series}", SOPInstanceUIDs=uids)


@pytest.fixture(scope="module")
def drafted(random_package):
    from app.ai_service import AiService

    volume = _volume("7")
    draft = run_sync(AiService(random_package, device="cpu").draft_task(volume))
    return volume, draft


def test_restore_keeps_ai_markings_accepted_and_deleted():
    ai = [("FINDINGS", "Nodule in the right upper lobe."), ("FINDINGS", "No effusion."),
          ("IMPRESSION", "Nodule.")]
    saved = {"FINDINGS": "Nodule in the right upper lobe. Mild emphysema.", "IMPRESSION": "Nodule."}
    doc = restore_document(saved, ai, accepted={2})
    statuses = [(e.text, e.status) for e in doc.entries]
    assert ("Nodule in the right upper lobe.", "ai") in statuses  # never accepted: still AI-marked
    assert ("Mild emphysema.", "human") in statuses
    assert ("Nodule.", "accepted") in statuses
    assert ("No effusion.", "deleted") in statuses
    assert doc.section_text("FINDINGS") == saved["FINDINGS"]


def test_draft_edit_reopen_sign(tmp_path, drafted):
    volume, draft = drafted
    key = key_of(volume)
    service = ReportService(tmp_path / "r.sqlite3", user="tester")
    assert service.open_series(key) is None
    status = service.start_from_draft(key, draft, volume)
    doc = ReportDocument.from_ai_sentences([(s.section, s.text) for s in draft.result.sentences])
    doc.add("IMPRESSION", "Follow-up CT in 3 months.")
    service.accept_sentence(key, 0)
    doc.accept(0)
    status = service.autosave(key, doc)
    assert status.version >= 2 and not status.locked
    # A second service (another window / after a restart) restores the text and markings.
    other = ReportService(tmp_path / "r.sqlite3", user="tester")
    opened = other.open_series(key)
    assert opened is not None
    assert opened.document.to_text() == doc.to_text()
    assert opened.document.entries[0].status == "accepted"
    signed = other.sign(key, opened.document, "Dr. Reader")
    assert signed.locked and signed.state == "signed"
    with pytest.raises(SignedReportError):
        other.autosave(key, doc)


def test_refuses_to_save_into_another_series(tmp_path, drafted):
    volume, draft = drafted
    service = ReportService(tmp_path / "r.sqlite3", user="tester")
    service.open_series(key_of(volume))
    service.start_from_draft(key_of(volume), draft, volume)
    other_key = key_of(_volume("8"))
    with pytest.raises(ValueError, match="another series"):
        service.autosave(other_key, ReportDocument())
    service.open_series(other_key)
    with pytest.raises(ValueError, match="do not match"):
        service.start_from_draft(other_key, draft, volume)  # a draft of series 7 onto series 8


def test_restore_matches_repeated_ai_sentences_one_to_one():
    ai = [("FINDINGS", "No effusion."), ("FINDINGS", "No effusion."), ("FINDINGS", "Clear lungs.")]
    doc = restore_document({"FINDINGS": "No effusion. No effusion. Clear lungs."}, ai, accepted=set())
    assert [(e.status, e.ai_index) for e in doc.entries] == [("ai", 0), ("ai", 1), ("ai", 2)]
