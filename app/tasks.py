"""Long-running work as Qt-free generators: Progress reports, cancel tokens, a synchronous runner.

A task is a generator that yields Progress and returns its result. The CLI and the tests run it
with run_sync(); the GUI runs the same generator on a worker thread (ui/workers.py).
Must not import PySide6.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """How far a task has come: fraction in [0, 1] and a short message for the user."""

    fraction: float
    message: str = ""


class Cancelled(Exception):
    """Raised inside a task when its CancelToken was set."""


class CancelToken:
    """Thread-safe flag a task checks between steps (per file, per slice batch, per token)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` when cancelled (at once if already cancelled), e.g. ORT terminate."""
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._callbacks.append(callback)
        if already:
            callback()


Task = Generator[Progress, None, T]


def run_sync(
    task: Task[T], on_progress: Callable[[Progress], Any] | None = None
) -> T:
    """Run a task to completion on the calling thread and return its result."""
    while True:
        try:
            progress = next(task)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(progress)
