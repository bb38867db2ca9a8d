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


def _glyph_names(path: Path) -> set[str]:
    """Glyph names of every font program embedded in the PDF (fpdf2 keeps them in its subsets)."""
    import io

    from fontTools.ttLib import TTFont

    names: set[str] = set()
    for page in pypdf.PdfReader(path).pages:
        for font in page["/Resources"]["/Font"].values():
            descriptor = font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            names |= set(TTFont(io.BytesIO(descriptor["/FontFile2"].get_object().get_data())).getGlyphOrder())
    return names


def test_an_arabic_name_prints_with_joined_letters(session: ReportSession, tmp_path: Path) -> None:
    reader = "محمد عبد الله"
    session.save_draft({"FINDINGS": FINDINGS, "IMPRESSION": IMPRESSION}, session.version)
    session.sign(reader)
    path = export_report(session.store, session.report_id, "pdf", tmp_path, user="r")
    assert reader in _text(path) and IMPRESSION in _text(path)
    # Joined Arabic uses the contextual (initial/medial/final) letter forms, named uniFExx in
    # DejaVu Sans; unshaped text would print every letter in its isolated form (uni06xx) only.
    contextual = {name for name in _glyph_names(path) if name.startswith("uniFE")}
    assert {"uniFEE3", "uniFEA4"} <= contextual  # initial meem, medial hah: "محمد" joined


def test_devanagari_prints_through_a_shaping_fallback_font(session: ReportSession, tmp_path: Path) -> None:
    if not pdf_fonts.fallback_fonts({"न"}):
        pytest.skip("no Devanagari font installed (e.g. fonts-noto-core)")
    session.save_draft({"FINDINGS": "दाहिने ऊपरी लोब में गांठ।", "IMPRESSION": IMPRESSION}, session.version)
    session.sign("अनन्या शर्मा")
    path = export_report(session.store, session.report_id, "pdf", tmp_path, user="r")
    text = _text(path)
    assert "Signed by अनन्या शर्मा" in text and IMPRESSION in text
    # Shaped, each virama joins its consonants into a conjunct (न्य, र्म); unshaped, the virama
    # would print as a separate mark (glyph uni094D).
    assert "uni094D" not in _glyph_names(path) and "uni0928" in _glyph_names(path)


def test_without_a_shaping_engine_rtl_text_refuses_the_pdf_clearly(session: ReportSession, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from fpdf import FPDF
    from fpdf.errors import FPDFException

    def missing(self, *args, **kwargs):
        raise FPDFException("The uharfbuzz package could not be imported")

    monkeypatch.setattr(FPDF, "set_text_shaping", missing)
    session.sign("محمد عبد الله")
    with pytest.raises(ExportError, match="right-to-left or Indic text.*uharfbuzz.*export as text"):
        export_report(session.store, session.report_id, "pdf", tmp_path / "x.pdf", user="r")
    assert not (tmp_path / "x.pdf").exists()
    assert pdf_fonts.needs_shaping("שלום") and pdf_fonts.needs_shaping("नमस्ते")
    assert not pdf_fonts.needs_shaping(READER + FINDINGS + "右上叶结节")
