"""The printed report: header, text, AI provenance, sign-off and key images, as PDF bytes.

Key images come from the caller as (caption, RGB uint8 array) pairs (e.g. a slice with its
heatmap blended in by the UI). Must not import Qt or DICOM libraries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.export.bundle import ExportBundle, ExportError
from app.export.pdf_writer import PdfDocument, wrap
from app.export.text import TITLE, body_sections, header_lines, signoff_lines

MARGIN = 50.0
GUTTER = 16.0


class _Layout:
    """A top-down cursor over pages; starts a new page when the next block does not fit."""

    def __init__(self, doc: PdfDocument, footer: str) -> None:
        self.doc, self.footer = doc, footer
        self.width = doc.page_size[0] - 2 * MARGIN
        self.y = 0.0
        self._page()

    def _page(self) -> None:
        self.doc.new_page()
        self.doc.text(MARGIN, MARGIN / 2, f"{self.footer}   page {len(self.doc.pages)}", size=7)
        self.y = self.doc.page_size[1] - MARGIN

    def need(self, height: float) -> None:
        if self.y - height < MARGIN:
            self._page()

    def lines(self, text: str, size: float = 10, bold: bool = False, gap: float = 4) -> None:
        for line in wrap(text, self.width, size, bold):
            self.need(size * 1.3)
            self.y -= size * 1.3
            self.doc.text(MARGIN, self.y, line, size, bold)
        self.y -= gap

    def pictures(self, row: list[tuple[str, np.ndarray]]) -> None:
        """Up to two images side by side, each with its caption underneath."""
        column = (self.width - GUTTER) / 2
        heights = [column * rgb.shape[0] / rgb.shape[1] for _, rgb in row]
        captions = [wrap(caption, column, 8) for caption, _ in row]
        self.need(max(heights) + 12 * max(len(c) for c in captions) + 14)
        top = self.y
        for number, ((_, rgb), height, lines) in enumerate(zip(row, heights, captions, strict=True)):
            x = MARGIN + number * (column + GUTTER)
            self.doc.image(x, top - height, column, height, rgb)
            for line_number, line in enumerate(lines):
                self.doc.text(x, top - height - 12 - 10.4 * line_number, line, size=8)
        self.y = top - max(heights) - 12 - 10.4 * max(len(c) for c in captions) - 10


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
        out.append((str(caption), rgb))
    return out


def render_pdf(bundle: ExportBundle, images: Sequence[tuple[str, np.ndarray]] = ()) -> bytes:
    """The report as a PDF (A4); raises ExportError for malformed key images."""
    checked = _checked(images)
    title = f"Report {bundle.report.report_id} version {bundle.version.version} ({bundle.status})"
    doc = PdfDocument(title=title)
    layout = _Layout(doc, title)
    layout.lines(TITLE, size=15, bold=True, gap=8)
    for line in header_lines(bundle):
        layout.lines(line, size=9, gap=1)
    layout.y -= 10
    for heading, text in body_sections(bundle):
        layout.lines(heading, size=11, bold=True, gap=2)
        layout.lines(text, size=10, gap=10)
    for line in signoff_lines(bundle):
        layout.lines(line, size=9, bold=line.startswith("Signed") or line.startswith("Amendment"), gap=2)
    if checked:
        layout.y -= 10
        layout.lines("Key images", size=11, bold=True, gap=6)
        for start in range(0, len(checked), 2):
            layout.pictures(checked[start:start + 2])
    return doc.to_bytes()
