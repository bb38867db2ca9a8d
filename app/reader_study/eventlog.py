"""The append-only, fsync'd JSON-lines event log of one reader's session, and where it lives.

Every line is written and flushed to disk before the call returns, so a crash loses at most the
event being written; a torn last line is skipped on reading. Must not import Qt.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from app.paths import user_data_dir

log = logging.getLogger(__name__)


def study_dir(study_id: str, root: Path | None = None) -> Path:
    return (root if root is not None else user_data_dir() / "reader-study") / study_id


def session_log_path(study_id: str, reader: str, session: int, root: Path | None = None) -> Path:
    return study_dir(study_id, root) / reader / f"session-{session}.jsonl"


class EventLog:
    """Appends one JSON object per line; each append is fsync'd."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """After a crash mid-write, start the next event on a line of its own."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())

    def append(self, event: dict) -> None:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict]:
        return read_events(self.path)


def read_events(path: Path) -> list[dict]:
    """All complete events of a log (empty when it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    events = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is incomplete (interrupted write): skipped", path.name, number)
                continue
            if isinstance(event, dict) and "event" in event and "t" in event:
                events.append(event)
    return events
