"""Header worker processes: the same index as reading in-process, and never a lost file.

The pool only makes a first open faster; whatever happens to it (a worker killed, cancel, no
pool at all) the index must be the one the in-process reader gives.
"""

from __future__ import annotations

import os
import signal

import pytest

from app.dicom import header_pool, index_sources, index_task
from app.dicom.synthetic import SeriesSpec, write_series
from app.tasks import Cancelled, CancelToken


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A good 40-slice series, a second series, and unusable files mixed in."""
    monkeypatch.setenv("MEDMPT_DATA_DIR", str(tmp_path / "data"))
    first = write_series(
        tmp_path / "study" / "a", SeriesSpec(count=40, rows=32, columns=32), shuffle_names=True
    )
    write_series(
        tmp_path / "study" / "b",
        SeriesSpec(count=12, rows=32, columns=32),
    )
    bad = tmp_path / "study" / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("not an image")
    (bad / "cut.dcm").write_bytes(first[3].read_bytes()[:300])
    (bad / "empty.dcm").write_bytes(b"")
    return tmp_path / "study"


@pytest.fixture
def pool(monkeypatch):
    """A running 2-worker pool that serves even small folders; stopped afterwards."""
    monkeypatch.setenv("MEDMPT_HEADER_WORKERS", "2")
    monkeypatch.setattr(header_pool, "MIN_FILES", 8)
    monkeypatch.setattr(header_pool, "CHUNK_FILES", 4)
    monkeypatch.setattr(header_pool, "_failed", False)
    header_pool.shutdown()
    header_pool.warm_up(background=False)
    assert header_pool._pool is not None, "the header workers did not start"
    yield header_pool
    header_pool.shutdown()


def _summary(index):
    return (
        [
            (
                s.key,
                s.SeriesDescription,
                s.problems,
                [(x.SOPInstanceUID, x.ref, x.pixel_offset) for x in s.slices],
            )
            for s in index.series
        ],
        sorted((p.file, p.cause) for p in index.problems),
        index.file_count,
    )


def _worker_pids(pool_module) -> list[int]:
    return [p.pid for p in pool_module._pool._processes.values()]


def test_workers_give_the_same_index_as_one_process(folder, pool, monkeypatch):
    alone = index_sources(folder, use_cache=False, parallel=False)
    workers = _worker_pids(pool)
    sent = []
    submit = pool._pool.submit
    monkeypatch.setattr(
        pool._pool, "submit", lambda fn, chunk: sent.append(len(chunk)) or submit(fn, chunk)
    )
    shared = index_sources(folder, use_cache=False)
    assert _summary(shared) == _summary(alone)
    assert len(shared.series) == 2 and len(shared.problems) == 3  # the bad files keep their reasons
    assert sum(sent) == shared.file_count  # every header went to the workers ...
    assert _worker_pids(pool) == workers  # ... which all survived


def test_a_killed_worker_loses_no_file(folder, pool):
    alone = index_sources(folder, use_cache=False, parallel=False)
    for pid in _worker_pids(pool):
        os.kill(pid, signal.SIGKILL)
    again = index_sources(folder, use_cache=False)
    assert _summary(again) == _summary(alone)
    assert pool._pool is None  # given up for the session: later opens read in-process
    assert _summary(index_sources(folder, use_cache=False)) == _summary(alone)


def test_cancel_stops_indexing_and_the_pool_stays_usable(folder, pool):
    token = CancelToken()
    task = index_task(folder, token, use_cache=False)
    next(task)
    next(task)
    token.cancel()
    with pytest.raises(Cancelled):
        for _ in task:
            pass
    assert pool._pool is not None
    assert len(index_sources(folder, use_cache=False).series) == 2


def test_worker_count_follows_the_setting(monkeypatch):
    monkeypatch.setenv("MEDMPT_HEADER_WORKERS", "0")
    assert header_pool.worker_count() == 0
    monkeypatch.setenv("MEDMPT_HEADER_WORKERS", "3")
    assert header_pool.worker_count() == 3
    monkeypatch.setenv("MEDMPT_HEADER_WORKERS", "many")
    assert 0 <= header_pool.worker_count() <= header_pool.MAX_WORKERS


def test_without_workers_small_folders_are_read_in_process(folder, monkeypatch):
    header_pool.shutdown()
    monkeypatch.setattr(header_pool, "_failed", False)
    monkeypatch.setenv("MEDMPT_HEADER_WORKERS", "2")
    index_sources(folder, use_cache=False)  # 56 files: too few to be worth starting workers
    assert header_pool._pool is None


def test_small_folders_are_spread_over_every_worker():
    # 66 files on 2 workers in tasks of 16 would leave one worker with 3 tasks, the other with 2.
    assert header_pool._chunk_size(66, 2) * 2 * header_pool.CHUNKS_PER_WORKER >= 66
    assert header_pool._chunk_size(66, 2) < 16
    assert header_pool._chunk_size(4000, 2) == header_pool.CHUNK_FILES
    assert header_pool._chunk_size(3, 4) == 1


def test_a_process_pinned_to_one_core_reads_headers_in_process(monkeypatch):
    """In a container limited to one core, extra worker processes would only compete for it."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("this platform has no CPU affinity call")
    monkeypatch.delenv("MEDMPT_HEADER_WORKERS", raising=False)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        assert header_pool.worker_count() == 0
    finally:
        os.sched_setaffinity(0, before)
    assert header_pool.worker_count() == (min(len(before), header_pool.MAX_WORKERS) if len(before) > 1 else 0)
