"""The self-test's export check passes in this install and names what is missing when it is not."""

from __future__ import annotations

from app import export_check
from app.export import pdf_fonts


def test_every_export_dependency_is_exercised_and_named():
    status, message = export_check.check_exports()
    assert status == "ok"
    assert "Parquet" in message and "DejaVuSans.ttf" in message and "DICOM SR writer" in message


def test_a_missing_pdf_font_or_parquet_writer_fails_the_check_by_name(monkeypatch):
    monkeypatch.setattr(pdf_fonts, "_matplotlib_font_dir", lambda: None)
    pdf_fonts.report_fonts.cache_clear()

    def no_parquet(table, where):
        raise OSError("libparquet missing")

    monkeypatch.setattr("app.reader_study.outputs.pq.write_table", no_parquet)
    try:
        status, message = export_check.check_exports()
    finally:
        pdf_fonts.report_fonts.cache_clear()
    assert status == "failed"
    assert "reader-study tables: libparquet missing" in message and "PDF font: the PDF font" in message
    assert "DICOM SR writer" not in message  # what still works is not reported as a problem
