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
    handle = workers.start_task(_task(3), "count")
    seen: list[float] = []
    handle.signals.progressed.connect(lambda p: seen.append(p.fraction))
    with qtbot.waitSignal(handle.signals.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [False]  # the task body ran on a worker thread, not the GUI thread
    qtbot.waitUntil(lambda: seen == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0], timeout=2000)


def test_errors_reach_the_caller_as_a_signal_not_a_crash(qtbot):
    def failing(cancel):
        yield Progress(0.5, "half")
        raise ValueError("corrupt input: slice 3")

    handle = workers.start_task(failing, "fail")
    with qtbot.waitSignal(handle.signals.errored, timeout=5000) as blocker:
        pass
    assert "corrupt input" in str(blocker.args[0])


def test_cancel_stops_a_running_task(qtbot):
    gate = threading.Event()
    handle = workers.start_task(_task(100, gate), "long")
    finished: list[object] = []
    handle.signals.finished.connect(finished.append)
    with qtbot.waitSignal(handle.signals.cancelled, timeout=5000):
        handle.cancel()
        gate.set()
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
