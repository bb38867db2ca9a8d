"""Patient identifiers never reach the log file, even when a DICOM file is opened."""

from __future__ import annotations

import logging

import pydicom
import pytest

from app import phi
from app.logging_setup import configure_logging
from app.study import open_sources_task
from app.tasks import run_sync


@pytest.fixture
def log_file(tmp_path):
    path = configure_logging(level=logging.DEBUG, log_dir=tmp_path / "log")
    yield path
    phi.clear_identifiers()


def _flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_opening_a_dicom_series_logs_no_patient_name_or_id(tmp_path, log_file, real_series_dir):
    # A copy of two real slices with identifiers a test can search for.
    series = tmp_path / "series"
    series.mkdir()
    for source in sorted(real_series_dir.glob("*.dcm"))[:2]:
        ds = pydicom.dcmread(source)
        ds.PatientName = "Testperson^Gwendolyn"
        ds.PatientID = "MRN-7741-2290"
        ds.save_as(series / source.name)
    logging.getLogger("app.test").info("opening %s", series)
    study = run_sync(open_sources_task([series]))
    assert len(study.index.series) == 1
    # Even code that logs an identifier by mistake is redacted once it was seen in a file.
    logging.getLogger("app.test").warning("careless message about %s", "Testperson^Gwendolyn MRN-7741-2290")
    _flush()
    text = log_file.read_text(encoding="utf-8")
    assert "opened 1 series" in text  # the open was logged...
    for identifier in ("Testperson", "Gwendolyn", "MRN-7741-2290"):
        assert identifier not in text  # ...without the patient's identifiers
    assert phi.REDACTED in text


def test_log_goes_to_the_user_log_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDMPT_LOG_DIR", str(tmp_path / "userlogs"))
    path = configure_logging()
    logging.getLogger("app.test").info("hello from the test")
    _flush()
    assert path.parent == tmp_path / "userlogs"
    assert "hello from the test" in path.read_text(encoding="utf-8")
