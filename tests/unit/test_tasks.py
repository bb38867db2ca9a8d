"""Generator tasks run synchronously, report progress and stop when cancelled."""

from __future__ import annotations

import pytest

from app.tasks import Cancelled, CancelToken, Progress, run_sync


def _count(n: int, cancel: CancelToken):
    for i in range(n):
        cancel.raise_if_cancelled()
        yield Progress((i + 1) / n, f"step {i + 1}")
    return n * 10


def test_run_sync_returns_the_result_and_reports_progress():
    seen: list[Progress] = []
    assert run_sync(_count(4, CancelToken()), seen.append) == 40
    assert [p.fraction for p in seen] == [0.25, 0.5, 0.75, 1.0]


def test_cancel_stops_between_steps_and_calls_callbacks():
    token = CancelToken()
    fired = []
    token.on_cancel(lambda: fired.append(True))
    seen: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        seen.append(progress)
        if len(seen) == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        run_sync(_count(10, token), on_progress)
    assert len(seen) == 2 and fired == [True]
