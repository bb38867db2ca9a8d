"""`medmpt export`: by report id or by DICOM folder, one line of output, clear errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pypdf
import pytest

from app import cli_export
from app.reports import ReportSession, ReportStore

from .conftest import PATIENT_ID, Study


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medmpt export")
    cli_export.add_arguments(parser)
    return cli_export.run(parser.parse_args(argv))


@pytest.fixture
def db(tmp_path: Path, study: Study) -> tuple[Path, int]:
    path = tmp_path / "reports.sqlite3"
    with ReportStore(path) as store:
        session = ReportSession.open(store, study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID,
                                     "reader1", draft=study.draft)
        session.sign("Dr Jane Reader")
        return path, session.report_id


def test_export_by_report_id_prints_one_line(db: tuple[Path, int], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path, report_id = db
    out = tmp_path / "out.json"
    assert _run([str(report_id), "--format", "json", "--db", str(path), "--out", str(out), "--user", "cli"]) == 0
    assert capsys.readouterr().out == f"exported report {report_id} version 2 (final) as json to {out}\n"
    assert json.loads(out.read_text())["status"] == "final"
    with ReportStore(path) as store:
        last = store.audit(report_id)[-1]
        assert (last.action, last.who, last.details) == ("exported", "cli", {"format": "json", "deidentified": False})


def test_export_by_dicom_folder_finds_the_study_report(db: tuple[Path, int], study: Study, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, report_id = db
    assert _run([str(study.folder), "--format", "sr", "--deidentify", "--db", str(path), "--out", str(tmp_path)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"exported report {report_id} version 2 (final) as sr, de-identified to ")
    written = Path(line.rstrip("\n").split(" to ", 1)[1])
    assert written.is_file() and PATIENT_ID.encode() not in written.read_bytes()


@pytest.mark.parametrize("target, message", [("999", "no report with id 999"),
                                             ("/no/such/folder", "neither a report id nor a DICOM folder")])
def test_bad_targets_give_a_clear_message(db: tuple[Path, int], tmp_path: Path, target: str, message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([target, "--format", "txt", "--db", str(db[0]), "--out", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_a_folder_without_a_stored_report_is_explained(tmp_path: Path, study: Study,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ReportStore(tmp_path / "empty.sqlite3").close()
    assert _run([str(study.folder), "--format", "txt", "--db", str(tmp_path / "empty.sqlite3")]) == 1
    assert "no stored report for the DICOM in" in capsys.readouterr().err


def test_missing_store_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["1", "--format", "txt", "--db", str(tmp_path / "none.sqlite3")]) == 1
    assert "no report store at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()


def test_pdf_from_a_folder_includes_evidence_key_images(db: tuple[Path, int], study: Study, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    assert _run([str(study.folder), "--format", "pdf", "--db", str(db[0]), "--out", str(out)]) == 0
    peaks = {s.evidence[0].index for s in study.draft.sentences}
    assert sum(len(page.images) for page in pypdf.PdfReader(out).pages) == len(peaks)
    assert _run([str(study.folder), "--format", "pdf", "--no-images", "--db", str(db[0]), "--out", str(out)]) == 0
    assert sum(len(page.images) for page in pypdf.PdfReader(out).pages) == 0
