"""The reading schedule: which case each reader reads, in which order and arm, per session.

Deterministic from the protocol's seed (string-seeded random.Random), so a resumed session sees
the same order. The reader is shown only "Case k of n"; the arm is not displayed. Must not import Qt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from app.reader_study.protocol import ARMS, Protocol


@dataclass(frozen=True)
class ScheduledCase:
    position: int  # 1-based, "Case k of n"
    case_id: str
    path: Path
    arm: str  # "unassisted" or "ai_assisted"


def _rng(protocol: Protocol, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (protocol.study_id, protocol.seed, *parts)))


def _crossover_arms(protocol: Protocol, reader: str, session: int) -> dict[str, str]:
    """Cases split into two seeded halves; reader groups alternate which half is AI-assisted first."""
    case_ids = [c.case_id for c in protocol.cases]
    _rng(protocol, "split").shuffle(case_ids)
    half = set(case_ids[: len(case_ids) // 2])
    readers = list(protocol.readers)
    _rng(protocol, "groups").shuffle(readers)
    group = readers.index(reader) % 2
    first = {cid: ARMS[(cid in half) ^ group] for cid in case_ids}
    if session == 1:
        return first
    return {cid: ARMS[1 - ARMS.index(arm)] for cid, arm in first.items()}


def _randomised_arms(protocol: Protocol, reader: str) -> dict[str, str]:
    """Balanced per-case randomisation for each reader (half the cases, rounded down, with AI)."""
    case_ids = [c.case_id for c in protocol.cases]
    _rng(protocol, "arms", reader).shuffle(case_ids)
    with_ai = set(case_ids[: len(case_ids) // 2])
    return {cid: ("ai_assisted" if cid in with_ai else "unassisted") for cid in case_ids}


def schedule_for(protocol: Protocol, reader: str, session: int) -> list[ScheduledCase]:
    """The ordered cases a reader reads in one session (1-based)."""
    if reader not in protocol.readers:
        raise ValueError(f"reader {reader!r} is not in the protocol (readers: {', '.join(protocol.readers)})")
    if not 1 <= session <= protocol.sessions:
        raise ValueError(f"session must be 1..{protocol.sessions} for a {protocol.design} study, not {session}")
    if protocol.design == "crossover":
        arms = _crossover_arms(protocol, reader, session)
    else:
        arms = _randomised_arms(protocol, reader)
    order = [c for c in protocol.cases]
    _rng(protocol, "order", reader, session).shuffle(order)
    return [ScheduledCase(k, c.case_id, c.path, arms[c.case_id]) for k, c in enumerate(order, start=1)]
