"""Indexing task: sources -> headers of every file -> patients / studies / series with problems.

Reads headers only, and only for files the persistent index cache (app.dicom.index_cache) does
not already hold in their current version; many files are read by worker processes
(app.dicom.header_pool). A file that cannot be used becomes a FileProblem;
nothing raises. Must not import Qt.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

from app.dicom import header_pool
from app.dicom.headers import HeaderError, read_header
from app.dicom.index_cache import Entry, FileKey, IndexCache, KeyMaker
from app.dicom.model import FileProblem, FileRef, IndexResult, SliceInfo
from app.dicom.series import build_index
from app.dicom.sources import expand_sources
from app.phi import register_identifiers
from app.tasks import CancelToken, Progress, Task, run_sync

log = logging.getLogger("app.dicom.index")


def read_entry(ref: FileRef) -> tuple[Entry, bool]:
    """One file's header as an Entry, and whether that result may be cached."""
    identifiers: set[str] = set()
    try:
        slices, meta = read_header(ref, identifiers)
    except HeaderError as exc:
        return Entry([], {}, [], str(exc)), exc.cacheable
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - last line of defence (even a Rust panic)
        return Entry([], {}, [], f"unexpected error: {type(exc).__name__}"), False
    return Entry(slices, meta, sorted(identifiers)), True


def _cached(
    refs: list[FileRef], cache: IndexCache | None
) -> tuple[dict[FileRef, FileKey], dict[FileRef, Entry]]:
    if cache is None:
        return {}, {}
    maker = KeyMaker()
    keys = {ref: key for ref in refs if (key := maker.key(ref)) is not None}
    return keys, cache.lookup(keys)


def index_task(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    cancel: CancelToken | None = None,
    *,
    use_cache: bool = True,
    parallel: bool = True,
) -> Task[IndexResult]:
    """Generator task: yields Progress per file, returns the IndexResult; raises Cancelled.

    ``use_cache=False`` reads every header (the cold path) and leaves the cache untouched;
    ``parallel=False`` reads every header in this process (never in the header workers).
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    refs, problems = expand_sources(paths)
    result = IndexResult(problems=list(problems), file_count=len(refs))
    records: list[tuple[list[SliceInfo], dict[str, str]]] = []
    total = max(len(refs), 1)
    identifiers: set[str] = set()
    cache = IndexCache() if use_cache else None
    fresh: list[tuple[FileKey, Entry]] = []
    pooled: Iterator[tuple[Entry, bool]] | None = None
    try:
        keys, hits = _cached(refs, cache)
        missing = [ref for ref in refs if ref not in hits]
        pooled = header_pool.read_entries(missing, parallel=parallel)
        for number, ref in enumerate(refs):
            if cancel is not None:
                cancel.raise_if_cancelled()
            entry = hits.get(ref)
            if entry is None:
                entry, cacheable = next(pooled) if pooled is not None else read_entry(ref)
                if cacheable and ref in keys:
                    fresh.append((keys[ref], entry))
            if entry.error is not None:
                result.problems.append(FileProblem(str(ref), entry.error))
            else:
                records.append((entry.slices, entry.meta))
                identifiers.update(entry.identifiers)
            yield Progress(
                (number + 1) / total * 0.95, f"reading headers: {number + 1} of {total} files"
            )
    finally:
        if pooled is not None:
            pooled.close()  # cancelled or failed: drop the chunks not yet read
        register_identifiers(list(identifiers))  # one batch: the redaction pattern is rebuilt once
        if cache is not None:
            cache.store(fresh)
            cache.close()
    build_index(records, result)
    yield Progress(1.0, f"indexed {len(result.series)} series")
    log.info(
        "indexed %d file(s) (%d from the cache): %d patient(s), %d study(ies), %d series, "
        "%d file problem(s)",
        len(refs),
        len(hits),
        len(result.patients),
        len(result.studies),
        len(result.series),
        len(result.problems),
    )
    return result


def index_sources(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    cancel: CancelToken | None = None,
    *,
    use_cache: bool = True,
    parallel: bool = True,
) -> IndexResult:
    """Index folders (recursively), files, .zip archives and DICOMDIRs; headers only."""
    return run_sync(index_task(paths, cancel, use_cache=use_cache, parallel=parallel))
