"""Reader-study timing, resume from the event log, and edit distances (Qt-free)."""

from __future__ import annotations

import json

import pytest

from app.reader_study.edits import char_distance, levenshtein, word_distance
from app.reader_study.eventlog import EventLog, read_events
from app.reader_study.schedule import ScheduledCase
from app.reader_study.timing import SessionRecorder, case_timing, replay
from app.report_document import ReportDocument

from .helpers import FakeClock

CASE = ScheduledCase(1, "c1", __import__("pathlib").Path("/nowhere"), "ai_assisted")


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("kitten", "sitting", 3), ("", "abc", 3), ("same", "same", 0), ("flaw", "lawn", 2),
])
def test_character_edit_distance_on_hand_checked_examples(a, b, expected):
    assert levenshtein(a, b) == expected == char_distance(b, a)


def test_word_edit_distance_counts_whole_words():
    # "no" -> "a" (substitution) and "is" inserted: 2 word edits, though many characters differ.
    assert word_distance("no nodule seen", "a nodule is seen") == 2
    assert word_distance("Lungs are clear.", "Lungs are clear.") == 0
    assert char_distance("no nodule seen", "a nodule is seen") == 5


def _recorder(tmp_path, clock):
    return SessionRecorder(EventLog(tmp_path / "s.jsonl"), clock)


def test_active_time_excludes_idle_gaps_and_unfocused_time(tmp_path):
    clock = FakeClock()
    rec = _recorder(tmp_path, clock)
    rec.open_case(CASE)
    clock.advance(5)  # loading and drafting: not reader time
    rec.ready()
    clock.advance(10)
    rec.activity()
    clock.advance(20)
    rec.edit("accept", ReportDocument())  # first edit after 30 s
    clock.advance(100)  # idle (over the 60 s threshold): excluded from active time
    rec.activity()
    clock.advance(4)
    rec.focus(False)
    clock.advance(30)  # another application had the focus
    rec.focus(True)
    clock.advance(6)
    rec.signed(ReportDocument())
    timing = case_timing(read_events(tmp_path / "s.jsonl"), idle_threshold_s=60)
    assert timing.total_s == pytest.approx(170)
    assert timing.active_s == pytest.approx(40)
    assert timing.first_edit_s == pytest.approx(30)
    assert timing.ready_s == pytest.approx(5)
    assert timing.signed and timing.n_edits == 1


def test_a_crash_loses_nothing_and_the_resumed_sitting_adds_up(tmp_path):
    clock = FakeClock()
    rec = _recorder(tmp_path, clock)
    rec.open_case(CASE)
    rec.ready()
    clock.advance(12)
    doc = ReportDocument.from_ai_sentences([("FINDINGS", "A nodule."), ("IMPRESSION", "Benign.")])
    doc.edit(0, "A 4 mm nodule.")
    rec.edit("edit", doc)
    # Crash: no 'suspended' event, and a torn half-written line at the end of the log.
    with open(tmp_path / "s.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"t": 99, "event": "edi')
    clock.advance(3600)  # the workstation was down for an hour
    events = read_events(tmp_path / "s.jsonl")
    state = replay(events)
    assert state["c1"].entries is not None and not state["c1"].signed
    restored = ReportDocument([type(doc.entries[0])(**e) for e in state["c1"].entries])
    assert restored.to_text() == doc.to_text()
    rec2 = _recorder(tmp_path, clock)
    rec2.open_case(CASE, resumed=True)
    clock.advance(2)
    rec2.ready()
    clock.advance(8)
    rec2.signed(restored)
    timing = case_timing(read_events(tmp_path / "s.jsonl"), idle_threshold_s=60)
    assert timing.total_s == pytest.approx(20)  # 12 s + 8 s: the downtime and reload are not counted
    assert timing.active_s == pytest.approx(20)
    assert timing.first_edit_s == pytest.approx(12)
    assert timing.signed


def test_every_event_is_on_disk_when_the_call_returns(tmp_path):
    clock = FakeClock()
    rec = _recorder(tmp_path, clock)
    rec.open_case(CASE)
    lines = (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["event"] == "opened"
    assert json.loads(lines[-1])["case"] == "c1"


def test_activity_events_are_throttled(tmp_path):
    clock = FakeClock()
    rec = _recorder(tmp_path, clock)
    rec.open_case(CASE)
    for _ in range(50):
        clock.advance(0.05)
        rec.activity()
    kinds = [e["event"] for e in read_events(tmp_path / "s.jsonl")]
    assert 2 <= kinds.count("activity") <= 4  # 2.5 s of scrolling, at most one event a second


def _full_matrix(a: str, b: str) -> int:
    """The textbook Wagner-Fischer table, as an independent reference."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


def test_edit_distance_matches_the_textbook_table_on_random_strings():
    import random

    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 9)))
        assert levenshtein(a, b) == _full_matrix(a, b), (a, b)
