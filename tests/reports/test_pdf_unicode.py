"""The printed PDF keeps every character of a signed report (names, units, symbols, other scripts) or refuses."""

from __future__ import annotations

from pathlib import Path

import pypdf
import pytest

from app.export import ExportError, export_report, pdf_fonts
from app.reports import ReportSession

READER = "Łukasz Dvořák"
FINDINGS = ("Solid nodule ≥ 5 mm in the right upper lobe → follow-up CT. Attenuation μ = 0.19 cm⁻¹; "
            "Müller's sign absent; size 6 × 4 mm — stable.")
IMPRESSION = "Pulmonary nodule ≥ 5 mm (Fleischner: CT in 6–12 months)."


def _text(path: Path) -> str:
    """The PDF's text as pypdf extracts it, whitespace runs (line wraps) made single spaces."""
    reader = pypdf.PdfReader(path, strict=True)
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def _embedded_fonts(path: Path) -> list[tuple[str, bool]]:
    """(font name, whether its TrueType program is embedded) for every font the PDF uses."""
    fonts = []
    for page in pypdf.PdfReader(path).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"] \
                if "/DescendantFonts" in font else font.get("/FontDescriptor", {})
            fonts.append((str(font["/BaseFont"]), "/FontFile2" in descriptor))
    return fonts


def test_names_units_and_symbols_print_exactly(session: ReportSession, tmp_path: Path) -> None:
    session.save_draft({"FINDINGS": FINDINGS, "IMPRESSION": IMPRESSION}, session.version)
    session.sign(READER)
    path = export_report(session.store, session.report_id, "pdf", tmp_path, user="r")
    text = _text(path)
    for expected in (f"Signed by {READER}", "≥ 5 mm", "μ = 0.19 cm⁻¹", "→ follow-up", "6 × 4 mm — stable",
                     "Müller's", "6–12 months", IMPRESSION):
        assert expected in text
    assert "?" not in text  # nothing replaced
    fonts = _embedded_fonts(path)
    assert fonts and all(embedded for _, embedded in fonts)  # prints the same on any machine
    assert {name.split("+")[-1] for name, _ in fonts} == {"DejaVuSansBook", "DejaVuSansBold"}


def test_an_amendment_by_an_accented_reader_keeps_the_reason(session: ReportSession, tmp_path: Path) -> None:
    session.save_draft({"FINDINGS": FINDINGS}, session.version)
    session.sign("Dr Jane Reader")
    session.amend("Größe korrigiert: ≥ 7 mm")
    session.save_draft({"FINDINGS": "Nodule ≥ 7 mm."}, session.version)
    session.sign(READER)
    text = _text(export_report(session.store, session.report_id, "pdf", tmp_path, user="r"))
    assert f"signed by {READER}" in text and "reason: Größe korrigiert: ≥ 7 mm" in text
    assert "Nodule ≥ 7 mm." in text and "AMENDED" in text


def test_chinese_prints_through_an_installed_fallback_font(session: ReportSession, tmp_path: Path) -> None:
    if not pdf_fonts.fallback_fonts({"结"}):
        pytest.skip("no CJK font installed (e.g. fonts-noto-cjk or fonts-droid-fallback)")
    session.save_draft({"FINDINGS": "右上叶结节 6 mm。", "IMPRESSION": "Nodule ≥ 5 mm."}, session.version)
    session.sign("王伟")
    text = _text(export_report(session.store, session.report_id, "pdf", tmp_path, user="r"))
    assert "右上叶结节 6 mm。" in text and "Signed by 王伟" in text and "Nodule ≥ 5 mm." in text


def test_characters_no_font_has_refuse_the_pdf_clearly(session: ReportSession, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_fonts, "FALLBACK_FONTS", ())
    session.save_draft({"FINDINGS": "右上叶结节 6 mm."}, session.version)
    with pytest.raises(ExportError, match=r'"结" \(U\+7ED3\).*export as text'):
        export_report(session.store, session.report_id, "pdf", tmp_path / "x.pdf", user="r")
    assert not (tmp_path / "x.pdf").exists()
    assert [e.action for e in session.store.audit(session.report_id)][-1] != "exported"
    # The other formats keep every character.
    txt = export_report(session.store, session.report_id, "txt", tmp_path, user="r")
    assert "右上叶结节 6 mm." in txt.read_text(encoding="utf-8")


def test_a_missing_font_file_is_explained(session: ReportSession, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_fonts, "_matplotlib_font_dir", lambda: None)
    pdf_fonts.report_fonts.cache_clear()
    try:
        with pytest.raises(ExportError, match="DejaVuSans.ttf .*shipped with matplotlib.*reinstall matplotlib"):
            export_report(session.store, session.report_id, "pdf", tmp_path / "x.pdf", user="r")
    finally:
        pdf_fonts.report_fonts.cache_clear()
    assert not (tmp_path / "x.pdf").exists()
