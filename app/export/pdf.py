"""The printed report: header, text, AI provenance, sign-off and key images, as PDF bytes (fpdf2).

Text is set in DejaVu Sans, embedded as a Unicode TrueType subset, so every character of the
signed report prints as written (μ, ≥, Łukasz Dvořák; CJK through an installed fallback font);
a character no font can print refuses the export rather than printing '?'. Key images come from
the caller as (caption, RGB uint8 array) pairs (e.g. a slice with its heatmap blended in by the
UI) and are embedded losslessly. Must not import Qt or DICOM libraries.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from fpdf import FPDF
from PIL import Image

from app.export.bundle import ExportBundle, ExportError
from app.export.pdf_fonts import (
    describe,
    fallback_fonts,
    needs_shaping,
    printable_text,
    report_fonts,
    unprintable,
)
from app.export.text import TITLE, body_sections, header_lines, signoff_lines

MARGIN = 50.0  # points, all four sides
GUTTER = 16.0  # between two key images
CAPTION = 8.0  # caption font size
FAMILY = "DejaVu"


class _Text(NamedTuple):
    text: str
    size: float = 10
    bold: bool = False
    gap: float = 4  # space after the block


class _ReportPdf(FPDF):
    """A4 in points with the report title and 'page N of M' in every page's footer."""

    def __init__(self, footer: str) -> None:
        super().__init__(orientation="portrait", unit="pt", format="A4")
        self.footer_text = footer
        self.total_alias = f"{{pages-{secrets.token_hex(6)}}}"  # never met in report text
        self.alias_nb_pages(self.total_alias)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN)

    def footer(self) -> None:
        self.set_y(-MARGIN / 2 - 7)
        self.set_font(FAMILY, "", 7)
        self.cell(0, 9, f"{self.footer_text}   page {self.page_no()} of {self.total_alias}", align="L")


def _checked(images: Sequence[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    out = []
    for number, item in enumerate(images, start=1):
        try:
            caption, rgb = item
        except (TypeError, ValueError) as exc:
            raise ExportError(f"key image {number} must be a (caption, RGB array) pair") from exc
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise ExportError(f"key image {number} must be an (H, W, 3) uint8 RGB array, got {rgb.dtype} {rgb.shape}")
        out.append((printable_text(str(caption)), np.ascontiguousarray(rgb)))
    return out


def _blocks(bundle: ExportBundle) -> list[_Text]:
    """The report's text in print order: title, header, sections, provenance and sign-off."""
    blocks = [_Text(TITLE, 15, True, 8)]
    blocks += [_Text(line, 9, False, 1) for line in header_lines(bundle)]
    blocks[-1] = blocks[-1]._replace(gap=11)
    for heading, text in body_sections(bundle):
        blocks += [_Text(heading, 11, True, 2), _Text(text, 10, False, 10)]
    blocks += [_Text(line, 9, line.startswith(("Signed", "Amendment")), 2) for line in signoff_lines(bundle)]
    return [block._replace(text=printable_text(block.text)) for block in blocks]


def _add_fonts(pdf: _ReportPdf, regular_text: str, bold_text: str) -> None:
    """Register DejaVu Sans (+ fallbacks where needed); ExportError for characters no font has."""
    regular, bold = report_fonts()
    needed = unprintable(regular_text, [regular]) | unprintable(bold_text, [bold])
    extra = fallback_fonts(needed) if needed else []
    missing = unprintable(regular_text, [regular, *extra]) | unprintable(bold_text, [bold, *extra])
    if missing:
        raise ExportError(
            f"the PDF cannot print {describe(missing)}: no installed font has these characters, and the "
            "report must not be printed with them replaced; install a font that has them (e.g. Noto Sans "
            "CJK, Debian package fonts-noto-cjk) or export as text, FHIR JSON or DICOM SR, which keep every "
            "character")
    pdf.add_font(FAMILY, "", regular.path)
    pdf.add_font(FAMILY, "B", bold.path)
    for number, font in enumerate(extra):
        pdf.add_font(f"fallback{number}", "", font.path, collection_font_number=font.number)
    if extra:
        pdf.set_fallback_fonts([f"fallback{number}" for number in range(len(extra))], exact_match=False)
    if needs_shaping(regular_text + bold_text):
        try:
            pdf.set_text_shaping(True)  # HarfBuzz joins and orders the letters; fpdf2 applies the bidi rules
        except Exception as exc:  # fpdf2 raises FPDFException when uharfbuzz is not installed
            raise ExportError(
                "the PDF cannot print this report's right-to-left or Indic text correctly: text shaping needs "
                f"the uharfbuzz package ({exc}); reinstall the workstation, or export as text, FHIR JSON or "
                "DICOM SR, which keep every character") from exc


def _write(pdf: _ReportPdf, block: _Text) -> None:
    pdf.set_font(FAMILY, "B" if block.bold else "", block.size)
    pdf.multi_cell(0, block.size * 1.3, block.text, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(block.gap)


def _pictures(pdf: _ReportPdf, row: list[tuple[str, np.ndarray]]) -> None:
    """Up to two images side by side, each with its caption underneath; a new page when they do not fit."""
    column = (pdf.epw - GUTTER) / 2
    pdf.set_font(FAMILY, "", CAPTION)
    captions = [pdf.multi_cell(column, CAPTION * 1.3, caption, align="L", dry_run=True, output="LINES")
                for caption, _ in row]
    caption_height = CAPTION * 1.3 * max(len(lines) for lines in captions)
    room = pdf.eph - caption_height - 14  # a very tall image is scaled down to fit one page
    sizes = []
    for _, rgb in row:
        width, height = column, column * rgb.shape[0] / rgb.shape[1]
        sizes.append((width * room / height, room) if height > room else (width, height))
    block = max(h for _, h in sizes) + 4 + caption_height
    if pdf.will_page_break(block):
        pdf.add_page()
    top = pdf.get_y()
    for number, ((caption, rgb), (width, height)) in enumerate(zip(row, sizes, strict=True)):
        x = pdf.l_margin + number * (column + GUTTER)
        pdf.image(Image.fromarray(rgb, "RGB"), x=x, y=top, w=width, h=height)
        pdf.set_xy(x, top + height + 4)
        pdf.multi_cell(column, CAPTION * 1.3, caption, align="L", new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, top + block + 10)


def render_pdf(bundle: ExportBundle, images: Sequence[tuple[str, np.ndarray]] = ()) -> bytes:
    """The report as a PDF (A4); raises ExportError for malformed key images or unprintable text."""
    checked = _checked(images)
    title = f"Report {bundle.report.report_id} version {bundle.version.version} ({bundle.status})"
    blocks = _blocks(bundle)
    images_heading = _Text("Key images", 11, True, 6)
    pdf = _ReportPdf(title)
    _add_fonts(pdf, "".join([title, *(b.text for b in blocks if not b.bold), *(c for c, _ in checked)]),
               "".join([images_heading.text, *(b.text for b in blocks if b.bold)]))
    pdf.set_title(title)
    pdf.set_producer("MedMPT workstation")
    pdf.set_lang("en")
    pdf.add_page()
    for block in blocks:
        _write(pdf, block)
    if checked:
        pdf.ln(10)
        _write(pdf, images_heading)
        for start in range(0, len(checked), 2):
            _pictures(pdf, checked[start:start + 2])
    return bytes(pdf.output())
