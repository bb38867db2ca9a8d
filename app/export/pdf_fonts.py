"""Unicode TrueType fonts for the printed report: DejaVu Sans (shipped with matplotlib) plus system fallbacks.

Finds the font files and says which characters they can print, so that a report is never printed
with a character silently replaced. Must not import Qt, DICOM libraries or matplotlib.pyplot.
"""

from __future__ import annotations

import importlib.util
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from app.export.bundle import ExportError

FONT_DIR = Path("mpl-data", "fonts", "ttf")  # inside the matplotlib package
REGULAR, BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"
# Fonts for scripts DejaVu Sans lacks (chiefly Chinese, Japanese, Korean), used only when a report
# needs them: (path, font number inside a .ttc collection). The first ones that exist are used.
FALLBACK_FONTS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/google-droid-sans-fonts/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    # Scripts that also need shaping (see `needs_shaping`): Debian package fonts-noto-core.
    ("/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansBengali-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansTamil-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansHebrew-Regular.ttf", 0),
    ("C:/Windows/Fonts/msyh.ttc", 0),
    ("C:/Windows/Fonts/simsun.ttc", 0),
    ("/System/Library/Fonts/Supplemental/Arial Unicode.ttf", 0),
)
# Line breaks and invisible characters, normalised before printing (see `printable_text`).
_BREAKS = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\t": "    ", "\u200b": None,
                         "\u200c": None, "\u200d": None, "\ufeff": None})


@dataclass(frozen=True)
class FontFile:
    path: Path
    number: int = 0  # font number in a .ttc collection


def _matplotlib_font_dir() -> Path | None:
    """matplotlib's bundled TTF folder, found without importing matplotlib when possible."""
    spec = importlib.util.find_spec("matplotlib")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):  # PyInstaller: installer.spec's datas
        locations.append(str(Path(sys._MEIPASS) / "matplotlib"))
    for location in locations:
        folder = Path(location) / FONT_DIR
        if (folder / REGULAR).is_file():
            return folder
    try:  # e.g. a frozen bundle whose importer gives no search locations
        import matplotlib

        folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    except (ImportError, OSError, AttributeError):
        return None
    return folder if (folder / REGULAR).is_file() else None


@cache
def report_fonts() -> tuple[FontFile, FontFile]:
    """(regular, bold) DejaVu Sans; raises ExportError when matplotlib's copy is missing."""
    folder = _matplotlib_font_dir()
    if folder is None or not (folder / BOLD).is_file():
        raise ExportError(
            f"the PDF font {REGULAR} (shipped with matplotlib under {FONT_DIR}) was not found; reinstall "
            "matplotlib, or export the report as text or DICOM SR instead")
    return FontFile(folder / REGULAR), FontFile(folder / BOLD)


@cache
def coverage(font: FontFile) -> frozenset[int]:
    """The code points `font` has a glyph for (empty when the file cannot be read)."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(font.path, fontNumber=font.number, lazy=True) as ttf:
            return frozenset(ttf.getBestCmap() or {})
    except Exception:  # noqa: BLE001 - any unreadable or unsupported font: treat it as covering nothing
        return frozenset()


def fallback_fonts(needed: set[str]) -> list[FontFile]:
    """Installed fallback fonts that together print as many of `needed` as they can, in list order."""
    chosen: list[FontFile] = []
    left = {ord(c) for c in needed}
    for path, number in FALLBACK_FONTS:
        if not left:
            break
        font = FontFile(Path(path), number)
        if font.path.is_file() and left & coverage(font):
            chosen.append(font)
            left -= coverage(font)
    return chosen


# Blocks whose letters change shape with their neighbours (Indic, Thai, Lao, Myanmar, Khmer).
_SHAPED_BLOCKS = ((0x0900, 0x0DFF), (0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF))


def needs_shaping(text: str) -> bool:
    """True when `text` has right-to-left letters (Arabic, Hebrew: joined and reordered) or a script
    whose letters combine (Devanagari and other Indic scripts, Thai, ...). Such text is printed
    through HarfBuzz (uharfbuzz), or its letters would come out unjoined and in the wrong order."""
    return any(unicodedata.bidirectional(c) in ("R", "AL") or any(lo <= ord(c) <= hi for lo, hi in _SHAPED_BLOCKS)
               for c in text if ord(c) >= 0x0590)


def printable_text(text: str) -> str:
    """`text` with every line break as "\\n", tabs as spaces and zero-width characters removed."""
    return text.replace("\r\n", "\n").translate(_BREAKS)


def unprintable(text: str, fonts: list[FontFile]) -> set[str]:
    """Characters of `text` (already `printable_text`) that none of `fonts` has a glyph for."""
    left = set(text) - {"\n", "\u00ad"}  # line breaks; soft hyphens print only at a break
    for font in fonts:
        left = {c for c in left if ord(c) not in coverage(font)}
    return left


def describe(characters: set[str]) -> str:
    """'"中" (U+4E2D), ...' for an error message, in code point order."""
    return ", ".join(f'"{c}" (U+{ord(c):04X})' for c in sorted(characters))
