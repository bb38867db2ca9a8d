"""The one Qt bridge for long work: runs app.tasks generators on QThreadPools, re-emits signals.

Pools: `io` (a few threads for DICOM reading), `inference` (exactly one thread, which serialises
the model) and `store` (one thread, which serialises report saves in order). Progress, results and errors reach the GUI thread as queued signals;
results are applied there only. `shutdown()` cancels everything and waits for the pools.
Modelled on superqt's GeneratorWorker.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.tasks import Cancelled, CancelToken, Progress

log = logging.getLogger(__name__)

SERIAL_POOLS = ("inference", "store")  # one thread each: the model, and the report database
TaskFactory = Callable[[CancelToken], Generator[Progress, None, Any]]

_pools: dict[str, QThreadPool] = {}
_active = 0
_active_lock = threading.Lock()
_handles: dict[int, TaskHandle] = {}
"""Running handles, kept alive until their last signal reached the GUI thread."""
_ids = itertools.count(1)


def _pool(name: str) -> QThreadPool:
    pool = _pools.get(name)
    if pool is None:
        pool = QThreadPool()
        pool.setMaxThreadCount(1 if name in SERIAL_POOLS else 2)
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
    released = Signal()  # last signal of a task: the bridge may drop its reference


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
            handle.signals.released.emit()

    def _drive(self) -> Any:
        task = self._factory(self._handle.token)
        while True:
            self._handle.token.raise_if_cancelled()
            try:
                progress = next(task)
            except StopIteration as stop:
                return stop.value
            self._handle.signals.progressed.emit(progress)


def start_task(
    factory: TaskFactory,
    name: str,
    pool: str = "io",
    *,
    on_progress: Callable[[Progress], Any] | None = None,
    on_finished: Callable[[Any], Any] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
    on_cancelled: Callable[[], Any] | None = None,
) -> TaskHandle:
    """Start `factory(cancel_token)` (a generator task) on a pool.

    The callbacks are connected before the task starts, so a task that ends at once cannot
    emit before anyone listens; they run on the GUI thread.
    """
    global _active
    handle = TaskHandle(name)
    handle.signals.released.connect(functools.partial(_release, handle.request_id))
    for signal, slot in (
        (handle.signals.progressed, on_progress),
        (handle.signals.finished, on_finished),
        (handle.signals.errored, on_error),
        (handle.signals.cancelled, on_cancelled),
    ):
        if slot is not None:
            signal.connect(slot)
    with _active_lock:
        _active += 1
        _handles[handle.request_id] = handle
    _pool(pool).start(_Runnable(factory, handle))
    return handle


def _release(request_id: int) -> None:
    """GUI thread, after the task's other signals were delivered: forget its handle."""
    with _active_lock:
        _handles.pop(request_id, None)


def shutdown(timeout_ms: int = 10_000) -> bool:
    """Cancel every running task and wait for the pools; True when all stopped in time."""
    with _active_lock:
        handles = list(_handles.values())
    for handle in handles:
        handle.cancel()
    return all(pool.waitForDone(timeout_ms) for pool in _pools.values())
