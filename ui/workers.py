"""The one Qt bridge for long work: runs app.tasks generators on QThreadPools, re-emits signals.

Two pools: `io` (a few threads for DICOM reading) and `inference` (exactly one thread, which
serialises the model). Progress, results and errors reach the GUI thread as queued signals;
results are applied there only. `shutdown()` cancels everything and waits for the pools.
Modelled on superqt's GeneratorWorker.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.tasks import CancelToken, Cancelled, Progress

log = logging.getLogger(__name__)

TaskFactory = Callable[[CancelToken], Generator[Progress, None, Any]]

_pools: dict[str, QThreadPool] = {}
_active = 0
_active_lock = threading.Lock()
_handles: set[TaskHandle] = set()
_ids = itertools.count(1)


def _pool(name: str) -> QThreadPool:
    pool = _pools.get(name)
    if pool is None:
        pool = QThreadPool()
        pool.setMaxThreadCount(1 if name == "inference" else 2)
        pool.setObjectName(f"medmpt-{name}")
        _pools[name] = pool
    return pool


def active_task_count() -> int:
    """Tasks started and not yet finished on any of our pools."""
    with _active_lock:
        return _active


class TaskSignals(QObject):
    """Signals of one task; lives on the GUI thread, emitted from the worker thread."""

    progressed = Signal(object)  # Progress
    finished = Signal(object)  # the task's return value
    errored = Signal(object)  # the exception
    cancelled = Signal()


class TaskHandle:
    """What the caller keeps: the request id, the signals, and cancel()."""

    def __init__(self, name: str) -> None:
        self.request_id = next(_ids)
        self.name = name
        self.token = CancelToken()
        self.signals = TaskSignals()
        self.done = threading.Event()

    def cancel(self) -> None:
        self.token.cancel()


class _Runnable(QRunnable):
    def __init__(self, factory: TaskFactory, handle: TaskHandle) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._factory = factory
        self._handle = handle

    def run(self) -> None:  # worker thread
        global _active
        handle = self._handle
        try:
            result = self._drive()
        except Cancelled:
            handle.signals.cancelled.emit()
        except Exception as exc:  # every error reaches the user as a message, never a crash
            log.exception("task %s failed", handle.name)
            handle.signals.errored.emit(exc)
        else:
            if handle.token.cancelled:
                handle.signals.cancelled.emit()
            else:
                handle.signals.finished.emit(result)
        finally:
            handle.done.set()
            with _active_lock:
                _active -= 1
                _handles.discard(handle)

    def _drive(self) -> Any:
        task = self._factory(self._handle.token)
        while True:
            self._handle.token.raise_if_cancelled()
            try:
                progress = next(task)
            except StopIteration as stop:
                return stop.value
            self._handle.signals.progressed.emit(progress)


def start_task(factory: TaskFactory, name: str, pool: str = "io") -> TaskHandle:
    """Start `factory(cancel_token)` (a generator task) on a pool; connect to handle.signals."""
    global _active
    handle = TaskHandle(name)
    with _active_lock:
        _active += 1
        _handles.add(handle)
    _pool(pool).start(_Runnable(factory, handle))
    return handle


def shutdown(timeout_ms: int = 10_000) -> bool:
    """Cancel every running task and wait for the pools; True when all stopped in time."""
    with _active_lock:
        handles = list(_handles)
    for handle in handles:
        handle.cancel()
    return all(pool.waitForDone(timeout_ms) for pool in _pools.values())
