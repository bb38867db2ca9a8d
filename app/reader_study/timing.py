"""Case timing for the reader study: records events through an injectable clock and derives
total, active and time-to-first-edit from the event log (so a resumed session loses nothing).

Active time excludes idle gaps longer than the threshold (the whole gap) and time the window was
unfocused. Times start when the case is ready (images shown and, in the AI arm, the draft shown),
so the model's own compute time never counts as reader time. Must not import Qt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from app.reader_study.eventlog import EventLog
from app.reader_study.schedule import ScheduledCase
from app.report_document import Entry, ReportDocument

Clock = Callable[[], float]
ACTIVITY_MIN_INTERVAL_S = 1.0  # throttle for "the reader is doing something" events


def entries_to_json(document: ReportDocument) -> list[dict]:
    return [asdict(e) for e in document.entries]


def document_from_json(entries: list[dict]) -> ReportDocument:
    return ReportDocument([Entry(**e) for e in entries])


class SessionRecorder:
    """Writes a session's events to its log; `clock` is time.time unless a test injects one."""

    def __init__(self, log: EventLog, clock: Clock = time.time) -> None:
        self.log, self.clock = log, clock
        self.case_id: str | None = None
        self._last_activity = float("-inf")

    def _write(self, event: str, **fields) -> float:
        t = float(self.clock())
        self.log.append({"t": t, "event": event, "case": self.case_id, **fields})
        return t

    def session_started(self, reader: str, session: int, resumed: bool) -> None:
        self.case_id = None
        self._write("session_started", reader=reader, session=session, resumed=resumed)

    def open_case(self, case: ScheduledCase, resumed: bool = False) -> None:
        self.case_id = case.case_id
        self._write("opened", arm=case.arm, position=case.position, resumed=resumed)

    def ready(self) -> None:
        self._write("ready")

    def draft_shown(self, sentences: list[tuple[str, str]]) -> None:
        self._write("draft", sentences=[list(s) for s in sentences])

    def activity(self) -> None:
        now = float(self.clock())
        if self.case_id is not None and now - self._last_activity >= ACTIVITY_MIN_INTERVAL_S:
            self._last_activity = now
            self._write("activity")

    def edit(self, action: str, document: ReportDocument) -> None:
        self._write("edit", action=action, entries=entries_to_json(document))

    def focus(self, focused: bool) -> None:
        if self.case_id is not None:
            self._write("focus_gained" if focused else "focus_lost")

    def answer(self, question_id: str, value: int) -> None:
        self._write("answer", question=question_id, value=int(value))

    def signed(self, document: ReportDocument) -> None:
        self._write("signed", entries=entries_to_json(document), text=document.to_text())
        self.case_id = None

    def suspended(self) -> None:
        if self.case_id is not None:
            self._write("suspended")


@dataclass(frozen=True)
class CaseTiming:
    total_s: float  # ready -> signed, summed over the case's sittings
    active_s: float  # total minus idle gaps over the threshold and unfocused time
    first_edit_s: float | None  # total time until the first edit (None: never edited)
    ready_s: float | None  # opened -> ready of the first sitting (loading, drafting)
    n_edits: int
    signed: bool


def case_timing(events: list[dict], idle_threshold_s: float) -> CaseTiming:
    """Timing of one case from its events, in log order (a sitting ends at the next 'opened')."""
    running, focused, last = False, True, 0.0
    total = active = 0.0
    first_edit: float | None = None
    ready_s: float | None = None
    opened_at: float | None = None
    n_edits, signed = 0, False
    for e in events:
        kind, t = e["event"], float(e["t"])
        if kind == "opened":
            running, focused, opened_at = False, True, t if opened_at is None else opened_at
            continue
        if kind == "ready" and not running:
            if ready_s is None and opened_at is not None:
                ready_s = t - opened_at
            running, last = True, t
            continue
        if not running:
            continue
        gap = max(0.0, t - last)
        total += gap
        if focused and gap <= idle_threshold_s:
            active += gap
        last = t
        if kind == "focus_lost":
            focused = False
        elif kind == "focus_gained":
            focused = True
        elif kind == "edit":
            n_edits += 1
            first_edit = total if first_edit is None else first_edit
        elif kind in ("signed", "suspended"):
            running = False
            signed = signed or kind == "signed"
    return CaseTiming(total, active, first_edit, ready_s, n_edits, signed)


@dataclass
class CaseRecord:
    """What the log says about one case of a session."""

    case_id: str
    arm: str = ""
    position: int = 0
    events: list[dict] = field(default_factory=list)
    draft: list[tuple[str, str]] | None = None
    entries: list[dict] | None = None  # the latest document snapshot
    answers: dict[str, int] = field(default_factory=dict)
    signed: bool = False


def replay(events: list[dict]) -> dict[str, CaseRecord]:
    """Rebuild each case's state from a session log (the restart path after a stop or crash)."""
    cases: dict[str, CaseRecord] = {}
    for e in events:
        case_id = e.get("case")
        if case_id is None:
            continue
        record = cases.setdefault(case_id, CaseRecord(case_id))
        record.events.append(e)
        kind = e["event"]
        if kind == "opened":
            record.arm, record.position = e.get("arm", ""), int(e.get("position", 0))
        elif kind == "draft":
            record.draft = [(s[0], s[1]) for s in e.get("sentences", [])]
        elif kind in ("edit", "signed"):
            record.entries = e.get("entries")
            record.signed = record.signed or kind == "signed"
        elif kind == "answer":
            record.answers[e["question"]] = int(e["value"])
    return cases
