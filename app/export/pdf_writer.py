"""A minimal PDF 1.4 writer: Helvetica text and RGB images (zlib-compressed XObjects), no Qt.

Enough for a printed report: pages of positioned text lines and pictures. Text uses the standard
Helvetica fonts with WinAnsiEncoding (characters outside cp1252 print as '?'). Must not import
Qt or DICOM libraries.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

A4 = (595.28, 841.89)  # points
# Helvetica advance widths (1/1000 em) for ASCII 32..126, from the standard AFM metrics.
_WIDTHS = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778,
    722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278,
    278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584]


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in points of `text` in Helvetica (bold estimated 6% wider)."""
    units = sum(_WIDTHS[ord(c) - 32] if 32 <= ord(c) <= 126 else 600 for c in text)
    return units * size / 1000 * (1.06 if bold else 1.0)


def wrap(text: str, width: float, size: float, bold: bool = False) -> list[str]:
    """Lines of `text` that fit `width` points; keeps paragraph breaks, splits over-long words."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if text_width(candidate, size, bold) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while text_width(word, size, bold) > width and len(word) > 1:
                cut = max(1, int(len(word) * width / text_width(word, size, bold)))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _literal(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)").replace(b"\r", b"") + b")"


@dataclass
class _Page:
    ops: list[bytes] = field(default_factory=list)
    images: list[int] = field(default_factory=list)  # indices into PdfDocument.images


@dataclass
class PdfDocument:
    """Pages of text and images; `to_bytes()` writes the PDF."""

    title: str = ""
    page_size: tuple[float, float] = A4
    pages: list[_Page] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)

    def new_page(self) -> None:
        self.pages.append(_Page())

    def text(self, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> None:
        font = b"/F2" if bold else b"/F1"
        self.pages[-1].ops.append(b"BT %s %.2f Tf %.2f %.2f Td %s Tj ET" % (font, size, x, y, _literal(text)))

    def image(self, x: float, y: float, width: float, height: float, rgb: np.ndarray) -> None:
        """Draw an (H, W, 3) uint8 RGB image with its lower-left corner at (x, y)."""
        rgb = np.asarray(rgb)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise ValueError(f"an image must be (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
        self.images.append(np.ascontiguousarray(rgb))
        number = len(self.images)
        self.pages[-1].images.append(number - 1)
        self.pages[-1].ops.append(b"q %.2f 0 0 %.2f %.2f %.2f cm /Im%d Do Q" % (width, height, x, y, number))

    def to_bytes(self) -> bytes:
        objects: list[bytes] = [b"", b""]  # 1: catalog, 2: pages (filled last)
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
        image_ids = []
        for rgb in self.images:
            data = zlib.compress(rgb.tobytes(), 6)
            objects.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                           b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
                           % (rgb.shape[1], rgb.shape[0], len(data), data))
            image_ids.append(len(objects))
        kids = []
        for page in self.pages:
            content = zlib.compress(b"\n".join(page.ops))
            objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(content), content))
            xobjects = b" ".join(b"/Im%d %d 0 R" % (i + 1, image_ids[i]) for i in page.images)
            objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R "
                           b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> /XObject << %s >> >> >>"
                           % (*self.page_size, len(objects), xobjects))
            kids.append(len(objects))
        objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
        objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
        objects.append(b"<< /Title %s /Producer (MedMPT workstation) >>" % _literal(self.title))
        return _serialise(objects)


def _serialise(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, len(objects), xref)
    return bytes(out)
