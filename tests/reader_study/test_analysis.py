"""The study's schedule, outputs and analysis from synthetic event logs (Qt-free): the analysis
recovers a known AI-minus-unassisted time difference, and the exports are readable."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from app.reader_study.analysis import analyse, compare, write_imrmc
from app.reader_study.eventlog import EventLog, session_log_path
from app.reader_study.outputs import collect, collect_sentences, write_table
from app.reader_study.schedule import schedule_for
from app.reader_study.timing import SessionRecorder
from app.report_document import ReportDocument

from .helpers import FakeClock, make_protocol

DRAFT = [("FINDINGS", "There is a small nodule in the right upper lobe."), ("FINDINGS", "No effusion."),
         ("IMPRESSION", "Likely benign nodule.")]
TRUE_SAVING_S = 40.0


def _simulate(protocol, root: Path, seed: int = 1) -> None:
    """Every reader reads every case in both sessions; AI-assisted reads are TRUE_SAVING_S faster."""
    rng = np.random.default_rng(seed)
    difficulty = {c.case_id: rng.uniform(150, 300) for c in protocol.cases}
    for reader in protocol.readers:
        speed = rng.uniform(0.8, 1.2)
        for session in (1, 2):
            clock = FakeClock()
            rec = SessionRecorder(EventLog(session_log_path(protocol.study_id, reader, session, root)), clock)
            rec.session_started(reader, session, resumed=False)
            for case in schedule_for(protocol, reader, session):
                duration = difficulty[case.case_id] * speed + rng.normal(0, 5)
                if case.arm == "ai_assisted":
                    duration -= TRUE_SAVING_S
                _read_case(rec, clock, case, duration)


def _read_case(rec, clock, case, duration: float) -> None:
    rec.open_case(case)
    clock.advance(3)
    if case.arm == "ai_assisted":
        rec.draft_shown(DRAFT)
        document = ReportDocument.from_ai_sentences(DRAFT)
    else:
        document = ReportDocument()
    rec.ready()
    steps = 10
    for step in range(steps):
        clock.advance(duration / steps)
        if case.arm == "ai_assisted" and step == 2:
            document.edit(0, "There is a small nodule in the left upper lobe.")
            rec.edit("edit", document)
        elif case.arm == "ai_assisted" and step == 3:
            document.delete(1)
            rec.edit("delete", document)
        elif case.arm == "unassisted" and step == 2:
            document.add("FINDINGS", "Clear lungs.")
            rec.edit("add", document)
        else:
            rec.activity()
    document.accept_all()
    rec.answer("confidence", 4)
    rec.answer("suspicion", 5 if case.arm == "ai_assisted" else 3)
    rec.signed(document)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Logs of 4 readers x 8 cases x 2 sessions, written once (each event is fsync'd)."""
    tmp_path = tmp_path_factory.mktemp("study")
    cases = [tmp_path / f"case{i}" for i in range(8)]
    protocol = make_protocol(cases, readers=("R1", "R2", "R3", "R4"), truth=[0, 1] * 4)
    _simulate(protocol, tmp_path / "logs")
    return protocol, tmp_path / "logs"


def test_crossover_schedule_is_deterministic_balanced_and_swaps_arms():
    protocol = make_protocol([Path(f"/c{i}") for i in range(6)], readers=("A", "B", "C"))
    for reader in protocol.readers:
        first, second = schedule_for(protocol, reader, 1), schedule_for(protocol, reader, 2)
        assert first == schedule_for(protocol, reader, 1)  # same order when the session is resumed
        assert sorted(c.case_id for c in first) == sorted(c.case_id for c in protocol.cases)
        assert [c.position for c in first] == list(range(1, 7))
        arms1 = {c.case_id: c.arm for c in first}
        arms2 = {c.case_id: c.arm for c in second}
        assert all(arms1[k] != arms2[k] for k in arms1)  # every case in the opposite arm after washout
        assert sorted(arms1.values()).count("ai_assisted") == 3
    other_seed = make_protocol([Path(f"/c{i}") for i in range(6)], readers=("A", "B", "C"), seed=8)
    orders = {tuple(c.case_id for c in schedule_for(p, r, s)) for p in (protocol, other_seed)
              for r in ("A", "B", "C") for s in (1, 2)}
    assert len(orders) > 1
    with pytest.raises(ValueError, match="session"):
        schedule_for(protocol, "A", 3)


def test_the_analysis_recovers_a_known_time_difference(study, tmp_path):
    protocol, root = study
    rows, edits = collect(protocol, root)
    assert len(rows) == 4 * 8 * 2 and all(r["signed"] for r in rows)
    result = compare(rows, "active_s")
    assert result.paired_by == "reader x case" and result.n_pairs == 32
    assert result.ci_low < -TRUE_SAVING_S < result.ci_high
    assert abs(result.median_difference + TRUE_SAVING_S) < 10
    assert result.wilcoxon_p < 0.001
    summary = analyse(rows, protocol, tmp_path / "out")
    for name in ("time_per_arm.png", "edit_distance.png", "pilot.imrmc", "analysis.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert (tmp_path / "out" / "time_per_arm.png").read_bytes()[:4] == b"\x89PNG"
    assert "imrmc_skipped" not in summary


def test_outcome_rows_count_kept_sentences_and_edit_distance(study, tmp_path):
    protocol, root = study
    rows, edits = collect(protocol, root)
    ai = [r for r in rows if r["arm"] == "ai_assisted"]
    plain = [r for r in rows if r["arm"] == "unassisted"]
    # Each AI read: sentence 1 edited ("right" -> "left"), sentence 2 deleted, sentence 3 kept.
    assert {(r["kept"], r["edited"], r["deleted"]) for r in ai} == {(1, 1, 1)}
    assert all(r["share_kept"] == pytest.approx(1 / 3) for r in ai)
    assert {r["word_distance"] for r in ai} == {3.0}  # one word changed, two words of "No effusion." gone
    assert {r["char_distance"] for r in ai} == {4.0 + len(" No effusion.")}  # right->left: 4
    assert all(math.isnan(r["char_distance"]) for r in plain)
    assert {r["answer_confidence"] for r in rows} == {4}
    assert len(edits) == 32 * 2 + 32 * 1  # two edits per AI read, one per unassisted read
    sentences = collect_sentences(protocol, root)
    assert len(sentences) == 32 * 3
    assert sorted({s["status"] for s in sentences}) == ["deleted", "edited", "kept"]
    assert all((s["char_distance"] == 0) == (s["status"] == "kept") for s in sentences)
    paths = write_table(rows, tmp_path / "outcomes")
    table = pq.read_table(paths[1])
    assert table.num_rows == len(rows) and "active_s" in table.column_names
    with open(paths[0], newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_imrmc_file_has_header_truth_lines_and_one_score_per_read(study, tmp_path):
    protocol, root = study
    rows, _ = collect(protocol, root)
    text = write_imrmc(rows, protocol, tmp_path / "x.imrmc").read_text().splitlines()
    begin = text.index("BEGIN DATA:")
    assert {"NR: 4", "N0: 4", "N1: 4", "NM: 2"} <= set(text[:begin])
    data = [line.split(",") for line in text[begin + 1:]]
    truth = [d for d in data if d[0] == "-1"]
    scores = [d for d in data if d[0] != "-1"]
    assert len(truth) == 8 and {d[3] for d in truth} == {"0", "1"}
    assert len(scores) == 64 and all(len(d) == 4 for d in scores)
    assert {d[2] for d in scores} == {"1", "2"}
    assert {(d[2], d[3]) for d in scores} == {("1", "3"), ("2", "5")}  # modality 2 = AI-assisted


def test_imrmc_needs_truth_on_every_case(tmp_path):
    protocol = make_protocol([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="truth"):
        write_imrmc([], protocol, tmp_path / "x.imrmc")


def test_randomised_design_reads_each_case_once_with_half_the_cases_assisted():
    protocol = make_protocol([Path(f"/c{i}") for i in range(6)], readers=("A", "B"), design="randomised")
    assert protocol.sessions == 1
    for reader in protocol.readers:
        cases = schedule_for(protocol, reader, 1)
        assert sorted(c.case_id for c in cases) == sorted(c.case_id for c in protocol.cases)
        assert [c.arm for c in cases].count("ai_assisted") == 3
