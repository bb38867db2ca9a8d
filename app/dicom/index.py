"""Indexing task: sources -> headers of every file -> patients / studies / series with problems.

Reads headers only. A file that cannot be used becomes a FileProblem; nothing raises.
Must not import Qt.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from app.dicom.headers import HeaderError, read_header
from app.dicom.model import FileProblem, FileRef, IndexResult, SliceInfo
from app.dicom.series import build_index
from app.dicom.sources import expand_sources
from app.phi import register_identifiers
from app.tasks import CancelToken, Progress, Task, run_sync

log = logging.getLogger("app.dicom.index")


def _read_one(
    ref: FileRef,
    records: list[tuple[list[SliceInfo], dict[str, str]]],
    result: IndexResult,
    identifiers: set[str],
) -> None:
    try:
        records.append(read_header(ref, identifiers))
    except HeaderError as exc:
        result.problems.append(FileProblem(str(ref), str(exc)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - last line of defence (even a Rust panic)
        result.problems.append(FileProblem(str(ref), f"unexpected error: {type(exc).__name__}"))


def index_task(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    cancel: CancelToken | None = None,
) -> Task[IndexResult]:
    """Generator task: yields Progress per file, returns the IndexResult; raises Cancelled."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    refs, problems = expand_sources(paths)
    result = IndexResult(problems=list(problems), file_count=len(refs))
    records: list[tuple[list[SliceInfo], dict[str, str]]] = []
    total = max(len(refs), 1)
    identifiers: set[str] = set()
    try:
        for number, ref in enumerate(refs):
            if cancel is not None:
                cancel.raise_if_cancelled()
            _read_one(ref, records, result, identifiers)
            yield Progress(
                (number + 1) / total * 0.95, f"reading headers: {number + 1} of {total} files"
            )
    finally:
        register_identifiers(list(identifiers))  # one batch: the redaction pattern is rebuilt once
    build_index(records, result)
    yield Progress(1.0, f"indexed {len(result.series)} series")
    log.info(
        "indexed %d file(s): %d patient(s), %d study(ies), %d series, %d file problem(s)",
        len(refs),
        len(result.patients),
        len(result.studies),
        len(result.series),
        len(result.problems),
    )
    return result


def index_sources(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    cancel: CancelToken | None = None,
) -> IndexResult:
    """Index folders (recursively), files, .zip archives and DICOMDIRs; headers only."""
    return run_sync(index_task(paths, cancel))
