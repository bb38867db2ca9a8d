"""`medmpt info PATH...`: lists patients / studies / series, their problems and the model's choice.

Prints to stdout only (identifiers are shown on screen, never logged). Must not import Qt.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.dicom import IndexResult, SeriesChoice, SeriesInfo, choose_series, index_sources
from app.tasks import Cancelled

_SYNTAX_NAMES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="folder, DICOM files, .zip or DICOMDIR"
    )
    parser.add_argument("--json", action="store_true", help="print the same information as JSON")
    parser.add_argument(
        "--series", metavar="UID", help="choose this SeriesInstanceUID for the model"
    )


def series_summary(series: SeriesInfo) -> dict[str, Any]:
    """The attributes `info` shows for one series, as JSON-ready values."""
    excluded: dict[str, int] = {}
    for _, reason in series.excluded:
        excluded[reason] = excluded.get(reason, 0) + 1
    return {
        "SeriesInstanceUID": series.SeriesInstanceUID,
        "part": series.part,
        "SeriesNumber": series.SeriesNumber,
        "Modality": series.Modality,
        "SeriesDescription": series.SeriesDescription,
        "instance_count": series.instance_count,
        "image_count": len(series.slices),
        "Rows": series.Rows,
        "Columns": series.Columns,
        "PixelSpacing": list(series.PixelSpacing) if series.PixelSpacing else None,
        "slice_spacing": series.slice_spacing,
        "SliceThickness": series.SliceThickness,
        "orientation": series.orientation,
        "TransferSyntaxUIDs": list(series.TransferSyntaxUIDs),
        "ConvolutionKernel": series.ConvolutionKernel,
        "loadable": series.loadable,
        "problems": list(series.problems),
        "excluded": [{"reason": r, "count": n} for r, n in excluded.items()],
    }


def index_summary(index: IndexResult, choice: SeriesChoice) -> dict[str, Any]:
    return {
        "file_count": index.file_count,
        "patients": [
            {
                "PatientID": patient.PatientID,
                "PatientName": patient.PatientName,
                "studies": [
                    {
                        "StudyInstanceUID": study.StudyInstanceUID,
                        "StudyDate": study.StudyDate,
                        "StudyDescription": study.StudyDescription,
                        "series": [series_summary(s) for s in study.series],
                    }
                    for study in patient.studies
                ],
            }
            for patient in index.patients
        ],
        "choice": {
            "SeriesInstanceUID": choice.series.SeriesInstanceUID if choice.series else None,
            "part": choice.series.part if choice.series else None,
            "reason": choice.reason,
        },
        "problems": [{"file": p.file, "cause": p.cause} for p in index.problems],
    }


def _mm(value: float | None) -> str:
    return f"{value:.2f} mm" if value else "?"


def _series_lines(s: dict[str, Any]) -> list[str]:
    spacing = "x".join(f"{v:.3f}" for v in s["PixelSpacing"]) + " mm" if s["PixelSpacing"] else "?"
    syntaxes = ", ".join(_SYNTAX_NAMES.get(u, u) for u in s["TransferSyntaxUIDs"])
    part = f" [{s['part']}]" if s["part"] else ""
    lines = [
        f"    Series {s['SeriesNumber'] if s['SeriesNumber'] is not None else '?'}{part}: "
        f'{s["Modality"] or "?"} "{s["SeriesDescription"]}", {s["instance_count"]} instance(s), '
        f"{s['image_count']} image(s), {s['Rows']}x{s['Columns']}",
        f"      pixel spacing {spacing}, slice spacing {_mm(s['slice_spacing'])}, "
        f"thickness {_mm(s['SliceThickness'])}, {s['orientation']}, kernel {s['ConvolutionKernel'] or '?'}",
        f"      transfer syntax: {syntaxes or '?'}",
        f"      SeriesInstanceUID {s['SeriesInstanceUID']}",
    ]
    lines += [f"      problem: {p}" for p in s["problems"]]
    lines += [f"      excluded: {e['count']} image(s): {e['reason']}" for e in s["excluded"]]
    return lines


def format_text(summary: dict[str, Any]) -> str:
    series_count = sum(len(st["series"]) for p in summary["patients"] for st in p["studies"])
    study_count = sum(len(p["studies"]) for p in summary["patients"])
    lines = [
        f"{summary['file_count']} file(s): {len(summary['patients'])} patient(s), {study_count} "
        f"study(ies), {series_count} series, {len(summary['problems'])} file problem(s)"
    ]
    for patient in summary["patients"]:
        lines.append(
            f"Patient {patient['PatientName'] or '?'} (PatientID {patient['PatientID'] or '?'})"
        )
        for study in patient["studies"]:
            lines.append(
                f'  Study {study["StudyDate"] or "?"} "{study["StudyDescription"]}" '
                f"StudyInstanceUID {study['StudyInstanceUID']}"
            )
            for series in study["series"]:
                lines += _series_lines(series)
    lines.append(f"Chosen for the model: {summary['choice']['reason']}")
    if summary["problems"]:
        lines.append("File problems:")
        lines += [f"  {p['file']}: {p['cause']}" for p in summary["problems"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        index = index_sources(args.paths)
    except Cancelled:
        return 130
    choice = choose_series(index, override_uid=args.series)
    summary = index_summary(index, choice)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_text(summary))
    return 0 if index.series else 1
