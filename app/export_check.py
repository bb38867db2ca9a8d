"""Checks that the exports' own dependencies work in this install (used by --self-test).

A frozen bundle leaves out whatever its build did not collect: the PDF font, the parts of pyarrow
that write Parquet, the DICOM SR writer's modules. Each is exercised the way the workstation uses
it: the reader-study tables are written (CSV and Parquet) and read back, the PDF fonts are found
and the DICOM SR writer is imported. Must not import Qt.
"""

from __future__ import annotations

import importlib
import math
import tempfile
from pathlib import Path


def _tables() -> str:
    from app.reader_study.outputs import read_rows, write_table

    rows = [{"case_id": "c1", "arm": "ai_assisted", "total_s": 12.5, "share_kept": math.nan}]
    with tempfile.TemporaryDirectory(prefix="medmpt-self-test-") as folder:
        _, parquet = write_table(rows, Path(folder) / "outcomes")
        back = read_rows(parquet)
    if back[0]["case_id"] != "c1" or back[0]["total_s"] != 12.5:
        raise ValueError(f"read back {back!r}")
    return "reader-study tables (CSV, Parquet)"


def _pdf_font() -> str:
    from app.export.pdf_fonts import report_fonts

    regular, _ = report_fonts()
    return f"PDF font {regular.path.name}"


def _sr_writer() -> str:
    importlib.import_module("app.export.sr")
    return "DICOM SR writer"


CHECKS = (("reader-study tables", _tables), ("PDF font", _pdf_font), ("DICOM SR writer", _sr_writer))


def check_exports() -> tuple[str, str]:
    """Return (status, message); status is "ok" or "failed", the message names what failed."""
    problems, done = [], []
    for name, check in CHECKS:
        try:
            done.append(check())
        except Exception as exc:  # report, never crash
            problems.append(f"{name}: {exc}")
    if problems:
        return "failed", "; ".join(problems)
    return "ok", ", ".join(done)
