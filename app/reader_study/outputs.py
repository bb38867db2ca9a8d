"""Per reader x case x arm outcome rows from the session logs, written as CSV and Parquet.

Must not import Qt.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from app.reader_study.edits import char_distance, word_distance
from app.reader_study.eventlog import read_events, session_log_path
from app.reader_study.protocol import Protocol
from app.reader_study.timing import CaseRecord, case_timing, document_from_json, replay
from app.report_document import ReportDocument

NUMERIC = ("total_s", "active_s", "first_edit_s", "ready_s", "char_distance", "word_distance",
           "share_kept")


def case_row(protocol: Protocol, reader: str, session: int, record: CaseRecord) -> dict:
    """One outcome row; AI-only fields are empty (NaN) in the unassisted arm."""
    timing = case_timing(record.events, protocol.idle_threshold_s)
    final = document_from_json(record.entries) if record.entries is not None else ReportDocument()
    row = {
        "study_id": protocol.study_id, "reader": reader, "session": session, "case_id": record.case_id,
        "arm": record.arm, "position": record.position, "signed": timing.signed,
        "total_s": timing.total_s, "active_s": timing.active_s,
        "first_edit_s": _nan(timing.first_edit_s), "ready_s": _nan(timing.ready_s),
        "n_edits": timing.n_edits, "ai_sentences": 0, "kept": 0, "edited": 0, "deleted": 0,
        "added": sum(1 for e in final.entries if e.origin == "human"),
        "share_kept": math.nan, "char_distance": math.nan, "word_distance": math.nan,
        "report_chars": len(final.to_text()),
    }
    if record.arm == "ai_assisted" and record.draft is not None:
        draft_text = ReportDocument.from_ai_sentences(record.draft).to_text()
        counts = final.counts()
        n_ai = len(record.draft)
        row.update(ai_sentences=n_ai, kept=counts["kept"], edited=counts["edited"], deleted=counts["deleted"],
                   share_kept=counts["kept"] / n_ai if n_ai else math.nan,
                   char_distance=float(char_distance(draft_text, final.to_text())),
                   word_distance=float(word_distance(draft_text, final.to_text())))
    for question in protocol.questions:
        row[f"answer_{question.question_id}"] = record.answers.get(question.question_id)
    return row


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def collect(protocol: Protocol, root: Path | None = None) -> tuple[list[dict], list[dict]]:
    """(outcome rows, edit events) for every reader and session that has a log."""
    rows, edits = [], []
    for reader, session, record in _records(protocol, root):
        rows.append(case_row(protocol, reader, session, record))
        edits.extend(_edit_rows(protocol, reader, session, record))
    return rows, edits


def collect_sentences(protocol: Protocol, root: Path | None = None) -> list[dict]:
    """Per AI sentence of each signed AI-assisted read: kept, edited or deleted, and its edit distance."""
    rows = []
    for reader, session, record in _records(protocol, root):
        if record.arm != "ai_assisted" or not record.signed or record.entries is None:
            continue
        for entry in document_from_json(record.entries).entries:
            if entry.origin != "ai":
                continue
            status = {"accepted": "kept", "ai": "kept"}.get(entry.status, entry.status)
            final = "" if entry.status == "deleted" else entry.text
            rows.append({"study_id": protocol.study_id, "reader": reader, "session": session,
                         "case_id": record.case_id, "ai_index": entry.ai_index, "section": entry.section,
                         "status": status, "char_distance": char_distance(entry.ai_text, final),
                         "word_distance": word_distance(entry.ai_text, final)})
    return rows


def _records(protocol: Protocol, root: Path | None):
    for reader in protocol.readers:
        for session in range(1, protocol.sessions + 1):
            events = read_events(session_log_path(protocol.study_id, reader, session, root))
            for record in replay(events).values():
                yield reader, session, record


def _edit_rows(protocol: Protocol, reader: str, session: int, record: CaseRecord) -> list[dict]:
    """Every edit with its time since the case was first opened."""
    start = next((float(e["t"]) for e in record.events if e["event"] == "opened"), 0.0)
    return [
        {"study_id": protocol.study_id, "reader": reader, "session": session, "case_id": record.case_id,
         "arm": record.arm, "t_s": float(e["t"]) - start, "action": e.get("action", "")}
        for e in record.events if e["event"] == "edit"
    ]


def write_table(rows: list[dict], stem: Path) -> list[Path]:
    """`stem`.csv and `stem`.parquet; returns both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0]) if rows else []
    csv_path, parquet_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    pq.write_table(pa.Table.from_pylist(rows), parquet_path)
    return [csv_path, parquet_path]


def read_rows(path: Path) -> list[dict]:
    """Outcome rows back from a Parquet file written by `write_table`."""
    return pq.read_table(path).to_pylist()
