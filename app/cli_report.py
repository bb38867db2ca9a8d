"""`medmpt report PATH`: draft a report for a CT series headless and write text, JSON and PNGs.

Picks the series (app.dicom.choose_series unless --series), loads the model package (--model or
the bundled default), drafts, prints the report with diagnosis and timings, and writes
report.txt, report.json and heatmap PNGs of the most relevant slices (written with Pillow,
which the PDF export uses too). Identifiers go to stdout and files only, never to the log.
Must not import Qt, vtk, DICOM libraries (app.dicom does that) or torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app import paths
from app.drafting import ReportDraft, draft_report_task
from app.export.key_images import blend_heatmap, window_rgb
from app.tasks import Cancelled, Progress, run_sync

MAX_PNGS = 6
MAX_UNREAD_LISTED = 10  # in report.txt; report.json lists all
# zlib level 3 with Pillow's adaptive row filters: a 512 x 512 heatmap PNG in 27 ms and 259 KB,
# against 50 ms and 268 KB for the hand-written writer used before (level 6, no filters) and
# 69 ms and 287 KB for Pillow's default level (same slice, median of 5).
PNG_COMPRESS_LEVEL = 3
NO_MODEL_EXIT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="folder, DICOM files, .zip or DICOMDIR")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID to use instead of the automatic choice")
    parser.add_argument("--model", metavar="DIR", type=Path, help="model package folder (default: the bundled model)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="where the model runs")
    parser.add_argument("--out", metavar="DIR", type=Path, default=Path("medmpt-report"),
                        help="folder for report.txt, report.json and PNGs (default: ./medmpt-report)")
    parser.add_argument("--json", action="store_true", help="print report.json to stdout instead of text")


def resolve_model_dir(model: Path | None) -> Path | None:
    return model if model is not None else paths.default_model_dir()


def load_series_volume(path: str, series_uid: str | None) -> tuple[Any, str, list[str]]:
    """(Volume, reason the series was chosen, "file: cause" of each DICOM file under `path` that
    could not be read: a slice of this series may be among them; files that are no DICOM at all,
    such as a README, are not counted); raises ValueError with a readable message."""
    from app.dicom import LoadError, choose_series, index_sources, load_volume

    index = index_sources([path])
    choice = choose_series(index, series_uid)
    unread = [f"{problem.file}: {problem.cause}" for problem in index.problems if not problem.not_dicom]
    if choice.series is None:
        raise ValueError(f"no series to draft a report for: {choice.reason}"
                         + (f" ({len(unread)} file(s) could not be read, first {unread[0]})" if unread else ""))
    try:
        return load_volume(choice.series), choice.reason, unread
    except LoadError as exc:
        raise ValueError(f"the chosen series could not be loaded: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    model_dir = resolve_model_dir(args.model)
    if model_dir is None:
        print("medmpt report: no model package is bundled yet and none was given; "
              "pass --model DIR (a folder with manifest.json) or set MEDMPT_MODEL_DIR.", file=sys.stderr)
        return NO_MODEL_EXIT
    from app.ai_service import head_note
    from inference.errors import InferenceError
    from inference.runtime import ReportRuntime

    if not Path(args.path).exists():
        print(f"medmpt report: {args.path} does not exist", file=sys.stderr)
        return 1
    try:
        t0 = time.perf_counter()
        runtime = ReportRuntime.load(model_dir, device=args.device)  # a bad package fails first
        t1 = time.perf_counter()
        volume, reason, unread = load_series_volume(args.path, args.series)
        t2 = time.perf_counter()
        progress = not args.json and sys.stderr.isatty()  # no carriage-return lines in logs and pipes
        draft = run_sync(draft_report_task(volume, runtime), _print_progress if progress else None)
        t3 = time.perf_counter()
    except (ValueError, InferenceError, OSError) as exc:
        print(f"\nmedmpt report: {exc}", file=sys.stderr)
        return 1
    except Cancelled:
        print("\nmedmpt report: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # a broken graph or runtime library: say so, never a traceback
        logging.getLogger(__name__).exception("report drafting failed")
        print(f"\nmedmpt report: drafting failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    if progress:
        print(file=sys.stderr)
    extra = {"model_load": 1000 * (t1 - t0), "series_load": 1000 * (t2 - t1), "total": 1000 * (t3 - t0)}
    notes = {head.name: head_note(head) for head in runtime.package.diagnosis_heads}
    outputs = write_outputs(draft, volume, args.out, reason, extra, notes, unread)
    if args.json:
        print(json.dumps(outputs, indent=2))
    else:
        print((args.out / "report.txt").read_text(encoding="utf-8"))
        print(f"Wrote {args.out / 'report.txt'}, {args.out / 'report.json'} and {len(outputs['pngs'])} PNG(s)")
    return 0


def _print_progress(progress: Progress) -> None:
    print(f"\r{100 * progress.fraction:5.1f}% {progress.message:<48}", end="", file=sys.stderr, flush=True)


def write_outputs(draft: ReportDraft, volume: Any, out: Path, reason: str, extra_ms: dict[str, float],
                  diagnosis_notes: dict[str, str] | None = None, unread: list[str] | None = None) -> dict[str, Any]:
    """Write report.txt, report.json and PNGs into `out`; return the JSON written.
    `diagnosis_notes`: per head, how far its probabilities can be trusted (ai_service.head_note);
    `unread`: the files of the input that could not be read ("file: cause")."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pngs = write_heatmap_pngs(draft, volume.voxels, out)
    heatmap_ms = 1000 * (time.perf_counter() - t0)
    data = draft.to_dict()
    data["series_choice"] = reason
    data["timings_ms"].update({"heatmaps": heatmap_ms, **extra_ms})
    data["pngs"] = [p.name for p in pngs]
    if diagnosis_notes:
        data["diagnosis_notes"] = diagnosis_notes
    data["files_not_read"] = list(unread or [])
    (out / "report.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "report.txt").write_text(format_report(data), encoding="utf-8")
    return data


def format_report(data: dict[str, Any]) -> str:
    """The human-readable report: header, sections, diagnosis, sentence slices, timings."""
    model = data["model"]
    depth = data["volume_shape"][0]
    lines = [f"MedMPT draft report: {model['label']}" if model["label"] else "MedMPT draft report",
             f"Model: {model['display_name']} {model['version']} (sha256 {model['hash'][:12]}) on {data['device'].upper()}",
             f"StudyInstanceUID: {data['StudyInstanceUID']}", f"SeriesInstanceUID: {data['SeriesInstanceUID']}",
             f"Request: {data['request_id']}  {data['created']}"]
    lines += [f"Notice: {n}" for n in data["notices"]]
    lines += [f"\u26a0 {c}" for c in data.get("checks", [])]
    lines += [f"\u26a0 Series: {p}" for p in data.get("series_problems", [])]
    unread = data.get("files_not_read", [])
    if unread:
        lines.append(f"\u26a0 {len(unread)} file(s) could not be read (a slice of this series may be among them):")
        lines += [f"    {u}" for u in unread[:MAX_UNREAD_LISTED]]
        if len(unread) > MAX_UNREAD_LISTED:
            lines.append(f"    ... and {len(unread) - MAX_UNREAD_LISTED} more (all in report.json)")
    lines += ["", "FINDINGS:", data["findings"] or "(none)", "", "IMPRESSION:", data["impression"] or "(none)", "",
              "Diagnosis:"]
    for head, probabilities in data["diagnosis"].items():
        best = max(probabilities, key=probabilities.get)
        listing = ", ".join(f"{c} {p:.2f}" for c, p in probabilities.items())
        note = data.get("diagnosis_notes", {}).get(head)
        lines.append(f"  {head}: {best} ({listing})" + (f" \u2014 {note}" if note else ""))
    lines.append(f"Sentences -> most relevant slice (0-based index of {depth} along the series):")
    for number, sentence in enumerate(data["sentences"], start=1):
        lines.append(f"  {number:>2}. [{sentence['section'][0]}] slice {sentence['most_relevant_slice']:>3}: {sentence['text']}")
    t = data["timings_ms"]
    order = ("model_load", "series_load", "preprocess", "vision", "decode", "explain", "heatmaps", "total")
    lines.append("Timings (ms): " + ", ".join(f"{k} {t[k]:.0f}" for k in order if k in t))
    return "\n".join(lines) + "\n"


def relevant_slices(draft: ReportDraft, limit: int = MAX_PNGS) -> list[int]:
    """The sentences' most relevant slices (first seen first), then the report's own top slice."""
    chosen: list[int] = []
    for z in [s.most_relevant_slice for s in draft.result.sentences] + [int(np.argmax(draft.result.report_relevance))]:
        if z not in chosen:
            chosen.append(z)
    return chosen[:limit]


def write_heatmap_pngs(draft: ReportDraft, voxels: np.ndarray, out: Path) -> list[Path]:
    written = []
    for z in relevant_slices(draft):
        rgb = overlay(voxels[z], draft.result.slice_heatmap(z))
        path = out / f"slice_{z:03d}_heatmap.png"
        Image.fromarray(rgb, "RGB").save(path, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        written.append(path)
    return written


def overlay(hu: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """(Y, X, 3) uint8: the slice in a lung window with the heatmap blended in red-yellow.

    The heat is stretched to the slice's own range so the hottest region stands out; where it
    is lowest the CT shows unobstructed.
    """
    heat = heat.astype(np.float32)
    low, high = float(heat.min()), float(heat.max())
    heat = (heat - low) / (high - low) if high > low else np.zeros_like(heat)
    return blend_heatmap(window_rgb(hu), heat, alpha=0.55)
