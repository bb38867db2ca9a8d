"""The suite's autouse fixture fails a test that leaves a worker thread running."""

from __future__ import annotations

from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def test_a_test_that_leaves_a_thread_running_fails(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        test_inner="""
import threading

stop = threading.Event()

def test_leaks_a_worker():
    threading.Thread(target=stop.wait, args=(8,), name="leaky-worker").start()

def test_cleans_up():
    stop.set()
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)  # the leaking test errors at teardown
    result.stdout.fnmatch_lines(["*test left workers running: threads ?leaky-worker?*"])
