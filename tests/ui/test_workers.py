"""The Qt bridge runs generator tasks off the GUI thread with progress, results, errors, cancel."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.ui

from app.tasks import Progress  # noqa: E402
from ui import workers  # noqa: E402


def _task(n: int, gate: threading.Event | None = None):
    def factory(cancel):
        for i in range(n):
            if gate is not None:
                gate.wait(5)
            cancel.raise_if_cancelled()
            yield Progress((i + 1) / n, f"{i + 1}/{n}")
        return threading.current_thread() is threading.main_thread()

    return factory


def test_result_and_progress_arrive_on_the_gui_thread(qtbot):
    seen: list[float] = []
    results: list[object] = []
    workers.start_task(
        _task(3), "count", on_progress=lambda p: seen.append(p.fraction), on_finished=results.append
    )
    qtbot.waitUntil(lambda: results != [], timeout=5000)
    assert results == [False]  # the task body ran on a worker thread, not the GUI thread
    assert seen == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]


def test_a_task_that_ends_at_once_still_delivers_its_result(qtbot):
    for _ in range(20):  # the race: the task finishes before the caller could connect
        results: list[object] = []
        workers.start_task(_task(0), "instant", on_finished=results.append)
        qtbot.waitUntil(lambda results=results: results == [False], timeout=5000)


def test_errors_reach_the_caller_as_a_signal_not_a_crash(qtbot):
    def failing(cancel):
        yield Progress(0.5, "half")
        raise ValueError("corrupt input: slice 3")

    errors: list[Exception] = []
    workers.start_task(failing, "fail", on_error=errors.append)
    qtbot.waitUntil(lambda: errors != [], timeout=5000)
    assert "corrupt input" in str(errors[0])


def test_cancel_stops_a_running_task(qtbot):
    gate = threading.Event()
    finished: list[object] = []
    cancelled: list[bool] = []
    handle = workers.start_task(
        _task(100, gate), "long", on_finished=finished.append, on_cancelled=lambda: cancelled.append(True)
    )
    handle.cancel()
    gate.set()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=5000)
    assert finished == []
    assert handle.done.wait(2)


def test_inference_pool_runs_one_task_at_a_time(qtbot):
    running = []
    peak = []
    lock = threading.Lock()

    def factory(cancel):
        with lock:
            running.append(1)
            peak.append(len(running))
        yield Progress(0.5)
        threading.Event().wait(0.05)
        with lock:
            running.pop()
        return True

    handles = [workers.start_task(factory, f"infer{i}", pool="inference") for i in range(3)]
    qtbot.waitUntil(lambda: all(h.done.is_set() for h in handles), timeout=5000)
    assert max(peak) == 1
