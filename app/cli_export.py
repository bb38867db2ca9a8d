"""`medmpt export STUDY_OR_REPORT --format sr|pdf|txt|json`: writes a stored report to a file.

STUDY_OR_REPORT is a report id from the store, or a DICOM folder / zip whose study's latest
report is exported (the folder also supplies the patient/study attributes an SR needs, and a
PDF gets key images of the AI evidence slices, in a lung window).
Prints one line per export; identifiers are never logged. Must not import Qt.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from app.export import FORMATS, ExportError, export_report
from app.reports import ReportStore, StoreError, default_store_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="STUDY_OR_REPORT", help="a report id, or a DICOM folder/zip of the study")
    parser.add_argument("--format", dest="fmt", choices=sorted(FORMATS), required=True, help="what to write")
    parser.add_argument("--deidentify", action="store_true",
                        help="PS3.15 basic profile: pseudonyms, shifted dates, remapped UIDs (for research)")
    parser.add_argument("--out", type=Path, help="file or folder to write (default: current folder)")
    parser.add_argument("--db", type=Path, help=f"report store (default: {default_store_path()})")
    parser.add_argument("--version", type=int, help="report version (default: latest signed, else latest)")
    parser.add_argument("--no-images", action="store_true",
                        help="PDF from a DICOM folder: leave out the key images of the AI evidence slices")
    parser.add_argument("--user", default=None, help="who exports, for the audit trail (default: login name)")


def _user(args: argparse.Namespace) -> str:
    if args.user:
        return args.user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _from_folder(store: ReportStore, folder: Path) -> tuple[int, list[tuple[str, str]], Any]:
    """The latest report of a study found in `folder`, that study's files (for headers), its series."""
    from app.dicom import index_sources

    index = index_sources(folder)
    best: tuple[int, list[tuple[str, str]], Any] | None = None
    for study in index.studies:
        report = store.find_report(study.StudyInstanceUID)
        if report is None or (best is not None and best[0] > report.report_id):
            continue
        series = [s for s in study.series if s.SeriesInstanceUID == report.SeriesInstanceUID]
        files = [(item.ref.path, item.ref.member or "") for s in series or study.series for item in s.slices[:1]]
        best = (report.report_id, files, max(series, key=lambda s: len(s.slices)) if series else None)
    if best is None:
        found = f"{len(index.studies)} stud{'y' if len(index.studies) == 1 else 'ies'}"
        raise ExportError(f"no stored report for the DICOM in {folder} ({found} found, none reported)")
    return best


def _key_images(store: ReportStore, report_id: int, series: Any) -> list:
    """Lung-window images of the AI evidence slices (no heatmaps: those need the model's result)."""
    from app.dicom import LoadError, load_volume
    from app.export.key_images import evidence_key_images

    draft = store.get_report(report_id).ai_draft
    if series is None or draft is None:
        return []
    try:
        volume = load_volume(series)
    except LoadError as exc:
        print(f"medmpt export: no key images ({exc})", file=sys.stderr)
        return []
    return evidence_key_images(volume, draft)


def run(args: argparse.Namespace) -> int:
    db = args.db or default_store_path()
    if not Path(db).is_file():
        print(f"medmpt export: no report store at {db} (use --db to name one)", file=sys.stderr)
        return 1
    try:
        with ReportStore(db) as store:
            target = str(args.target)
            images: list = []
            if target.isdigit():
                report_id, files = int(target), []
            elif Path(target).exists():
                report_id, files, series = _from_folder(store, Path(target))
                if args.fmt == "pdf" and not args.no_images:
                    images = _key_images(store, report_id, series)
            else:
                raise ExportError(f"{target} is neither a report id nor a DICOM folder or file")
            path = export_report(store, report_id, args.fmt, args.out, user=_user(args), deidentify=args.deidentify,
                                 version=args.version, source_files=files, images=images)
            version = store.audit(report_id)[-1].version
            state = str(store.version(report_id, version).state)
    except (ExportError, StoreError) as exc:
        print(f"medmpt export: {exc}", file=sys.stderr)
        return 1
    status = {"signed": "final", "amended": "amended"}.get(state, "preliminary")
    mode = ", de-identified" if args.deidentify else ""
    print(f"exported report {report_id} version {version} ({status}) as {args.fmt}{mode} to {path}")
    return 0
