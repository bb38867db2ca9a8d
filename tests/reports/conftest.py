"""Fixtures for the report store and export tests: a small synthetic CT series, its AI draft, a store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.dicom import SeriesInfo, index_sources, load_volume
from app.dicom.synthetic import SeriesSpec, write_series
from app.reports import AIDraftRecord, ReportSession, ReportStore, draft_record_from_result
from app.volume import Volume
from inference.result import ModelInfo, ReportResult, Sentence, Timings

PATIENT_NAME = "TESTPATIENT^ALICE"
PATIENT_ID = "PID-987654"
ACCESSION = "ACC-55501"
FINDINGS = "The lungs are clear. A 6 mm nodule is seen in the right upper lobe."
IMPRESSION = "Small pulmonary nodule."
SENTENCES = (("The lungs are clear.", "FINDINGS", 2), ("A 6 mm nodule is seen in the right upper lobe.", "FINDINGS", 5),
             ("Small pulmonary nodule.", "IMPRESSION", 5))
MODEL = ModelInfo("medmpt-tiny-phantom", "0.3.1", "MedMPT tiny (phantom)", "c0ffee" * 10 + "abcd",
                  "synthetic, not for clinical use", False)


@dataclass
class Study:
    folder: Path
    series: SeriesInfo
    volume: Volume
    result: ReportResult
    draft: AIDraftRecord


def make_result(count: int) -> ReportResult:
    """A ReportResult as the runtime returns it, with slice relevance peaking at the given slice."""
    sentences = []
    for number, (text, section, peak) in enumerate(SENTENCES):
        relevance = np.exp(-0.5 * ((np.arange(count) - peak) / 0.8) ** 2)
        sentences.append(Sentence(text, section, number * 5, number * 5 + 5, relevance / relevance.max(), peak))
    return ReportResult(FINDINGS, IMPRESSION, f"FINDINGS: {FINDINGS} IMPRESSION: {IMPRESSION}", sentences, {},
                        MODEL, "cpu", [], Timings(), (1, 2, 3), np.arange(count), (count, 32, 32),
                        {"request_id": "req-42"})


def _add_identifiers(path: Path) -> None:
    """Give a synthetic slice the identifying attributes a real CT header carries."""
    ds = pydicom.dcmread(path)
    ds.AccessionNumber, ds.PatientBirthDate, ds.PatientSex = ACCESSION, "19610215", "F"
    ds.StudyTime, ds.StudyID, ds.ReferringPhysicianName = "101502", "STUDY7", "REFERRER^BOB"
    ds.InstitutionName = "General Hospital of Testing"
    block = ds.private_block(0x0009, "MEDMPT TEST", create=True)
    block.add_new(0x01, "LO", PATIENT_ID)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    folder = tmp_path_factory.mktemp("ct")
    spec = SeriesSpec(count=10, rows=32, columns=32, PatientName=PATIENT_NAME, PatientID=PATIENT_ID)
    for path in write_series(folder, spec):
        _add_identifiers(path)
    series = index_sources(folder).series[0]
    volume = load_volume(series)
    result = make_result(volume.shape[0])
    return Study(folder, series, volume, result, draft_record_from_result(result, volume, series=series))


@pytest.fixture
def store(tmp_path: Path):
    with ReportStore(tmp_path / "db" / "reports.sqlite3") as opened:
        yield opened


@pytest.fixture
def session(store: ReportStore, study: Study) -> ReportSession:
    return ReportSession.open(store, study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID,
                              "reader1", draft=study.draft)
