"""Exports of a stored report: DICOM SR, PDF, plain text and FHIR-like JSON, optionally de-identified.

Must not import Qt; DICOM objects are built by app.dicom (sr_writer, deidentify).

Public API
----------
``export_report(store, report_id, fmt, out, *, user, deidentify=False, version=None, images=(),
source_files=()) -> Path``
    ``fmt`` is one of FORMATS ("sr", "pdf", "txt", "json"). Exports the given version, by
    default the latest signed version (else the latest draft, marked preliminary). Writes
    atomically (temporary file, then rename) and records an 'exported' audit row.
    ``images`` are (caption, RGB uint8 array) key images for the PDF; ``source_files`` are
    (path, zip member) of source CT images to read patient/study attributes from when the files
    recorded with the AI draft have moved. Raises ExportError (or a StoreError) with a message.
``load_bundle(store, report_id, version=None, deidentify=False, source_files=()) -> ExportBundle``
``render_text(bundle) -> str``, ``render_fhir(bundle) -> dict``, ``render_pdf(bundle, images) -> bytes``
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.export.bundle import ExportBundle, ExportError, deid_secret, load_bundle
from app.export.fhir import render_fhir
from app.export.pdf import render_pdf
from app.export.text import render_text
from app.reports import AuditAction, ReportStore

FORMATS = {"sr": ".dcm", "pdf": ".pdf", "txt": ".txt", "json": ".json"}


def default_name(report_id: int, version: int, fmt: str, deidentify: bool) -> str:
    return f"report-{report_id}-v{version}{'-deid' if deidentify else ''}{FORMATS[fmt]}"


def _write_atomic(path: Path, write) -> None:  # noqa: ANN001 - write(tmp_path) -> None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".export-", dir=path.parent)
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_report(store: ReportStore, report_id: int, fmt: str, out: Path | str | None, *, user: str,
                  deidentify: bool = False, version: int | None = None,
                  images: Sequence[tuple[str, np.ndarray]] = (),
                  source_files: Sequence[tuple[str, str]] = ()) -> Path:
    """Write one export and audit it; returns the written path (a folder `out` gets a default name)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    bundle = load_bundle(store, report_id, version, deidentify=deidentify and fmt != "sr",
                         source_files=source_files)
    name = default_name(report_id, bundle.version.version, fmt, deidentify)
    path = Path(out) if out is not None else Path.cwd() / name
    if path.is_dir():
        path = path / name
    try:
        if fmt == "sr":
            from app.export.sr import write_sr_export

            secret = deid_secret(store)
            _write_atomic(path, lambda tmp: write_sr_export(bundle, tmp, secret, deidentify))
        elif fmt == "pdf":
            data = render_pdf(bundle, images)
            _write_atomic(path, lambda tmp: tmp.write_bytes(data))
        elif fmt == "txt":
            _write_atomic(path, lambda tmp: tmp.write_text(render_text(bundle), encoding="utf-8"))
        else:
            text = json.dumps(render_fhir(bundle), indent=2, ensure_ascii=False)
            _write_atomic(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"cannot write the {fmt} export to {path}: {exc.strerror or exc}") from exc
    store.record(AuditAction.EXPORTED, user, report_id, bundle.version.version,
                 {"format": fmt, "deidentified": bool(deidentify)})
    return path


__all__ = ["FORMATS", "ExportBundle", "ExportError", "export_report", "load_bundle", "render_fhir",
           "render_pdf", "render_text"]
