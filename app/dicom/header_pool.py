"""Reads DICOM headers in worker processes, so a first open of a large folder uses every core.

Header parsing is pure Python (pydicom) and holds the GIL, so threads cannot share it; processes
can. The pool is started once, from a fork server (forking a running Qt application is unsafe),
and kept for the life of the program; `warm_up()` starts it early (the workstation calls it at
launch, while the user is still choosing a folder). Small folders are read in-process: for a
few files a round trip to the workers costs more than it saves; a one-off command starts the
pool only for a folder large enough to pay for the start.

Anything wrong with the pool (it cannot start, a worker dies, results cannot be pickled) makes
the caller read those files in-process instead: the pool can only make indexing faster, never
lose a file. Settings: MEDMPT_HEADER_WORKERS (0 turns the pool off; default: the usable cores,
at most 4). Must not import Qt.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from app.dicom.index_cache import Entry
from app.dicom.model import FileRef
from inference.cpu import usable_cores

log = logging.getLogger("app.dicom.header_pool")

MIN_FILES = 48
"""Fewer uncached files than this are read in-process."""
START_FILES = 2000
"""A pool not yet running is started for this many files (starting costs about 0.3-1 s, which a
one-off command only wins back on a large folder); a warmed-up pool serves MIN_FILES and more."""
CHUNK_FILES = 16
"""Files per task sent to a worker (few round trips, yet progress and cancel stay prompt)."""
CHUNKS_PER_WORKER = 4
MAX_WORKERS = 4

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_failed = False


def worker_count() -> int:
    """Worker processes the pool uses (0: read in-process)."""
    if getattr(sys, "frozen", False):
        return 0  # a PyInstaller bundle cannot start fork-server workers of itself
    setting = os.environ.get("MEDMPT_HEADER_WORKERS", "").strip()
    if setting:
        try:
            return max(0, int(setting))
        except ValueError:
            log.warning("MEDMPT_HEADER_WORKERS=%r is not a number; using the default", setting)
    cores = usable_cores()
    return min(cores, MAX_WORKERS) if cores > 1 else 0


def _read_chunk(refs: list[FileRef]) -> list[tuple[Entry, bool]]:
    from app.dicom.index import read_entry  # in the worker: index imports this module

    return [read_entry(ref) for ref in refs]


def _start() -> ProcessPoolExecutor | None:
    global _pool, _failed
    with _lock:
        if _pool is not None or _failed:
            return _pool
        workers = worker_count()
        if workers < 1:
            return None
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["app.dicom.index"])
            _pool = ProcessPoolExecutor(workers, mp_context=context)
            # Start the processes now (lazily they would start on the first open).
            list(_pool.map(_noop, range(workers)))
        except Exception as exc:  # noqa: BLE001 - no pool means reading in-process
            log.warning("header worker processes unavailable (%s); reading in-process", exc)
            _failed = True
            _pool = None
        else:
            log.info("header pool started with %d worker process(es)", workers)
        return _pool


def _noop(value: int) -> int:
    return value


def warm_up(background: bool = True) -> None:
    """Start the worker processes now, in a background thread unless `background` is False."""
    if worker_count() < 1:
        return
    if background:
        threading.Thread(target=_start, name="header-pool-start", daemon=True).start()
    else:
        _start()


def shutdown() -> None:
    """Stop the workers (tests, and at exit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)  # once; a no-op when no pool runs


def _broken() -> None:
    """A worker died or the pool misbehaved: stop using it for the rest of the session."""
    global _failed
    _failed = True
    shutdown()


def read_entries(
    refs: list[FileRef], *, parallel: bool = True
) -> Iterator[tuple[Entry, bool]] | None:
    """read_entry's (entry, cacheable) for every ref, in order, read by the workers; None when
    the pool is not worth it, not available or not wanted (the caller then reads in-process).

    Closing the iterator early (cancel) drops the chunks not yet read."""
    if not parallel or len(refs) < MIN_FILES or (_pool is None and len(refs) < START_FILES):
        return None
    pool = _start()
    if pool is None:
        return None
    return _results(pool, refs)


def _chunk_size(files: int, workers: int) -> int:
    """Files per task: CHUNK_FILES, or fewer so that every worker gets about CHUNKS_PER_WORKER
    tasks (a few large tasks leave one worker idle while the other finishes its last)."""
    return max(1, min(CHUNK_FILES, -(-files // (max(workers, 1) * CHUNKS_PER_WORKER))))


def _results(pool: ProcessPoolExecutor, refs: list[FileRef]) -> Iterator[tuple[Entry, bool]]:
    size = _chunk_size(len(refs), worker_count())
    chunks = [refs[i : i + size] for i in range(0, len(refs), size)]
    futures: list[Future[list[tuple[Entry, bool]]] | None] = []
    try:
        futures = [pool.submit(_read_chunk, chunk) for chunk in chunks]
    except Exception as exc:  # noqa: BLE001 - e.g. the pool broke since it was started
        log.warning("header pool unusable (%s); reading in-process", type(exc).__name__)
        _broken()
        futures = [None] * len(chunks)
    try:
        for chunk, future in zip(chunks, futures, strict=True):
            yield from _chunk_result(future, chunk)
    finally:
        for future in futures:
            if future is not None:
                future.cancel()


def _chunk_result(
    future: Future[list[tuple[Entry, bool]]] | None, chunk: list[FileRef]
) -> list[tuple[Entry, bool]]:
    from app.dicom.index import read_entry

    if future is not None and not _failed:  # once broken, the other chunks are read here
        try:
            result = future.result()
            if len(result) == len(chunk):
                return result
        except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, pickling, ...
            log.warning("header worker failed (%s); reading in-process", type(exc).__name__)
            _broken()
    return [read_entry(ref) for ref in chunk]
