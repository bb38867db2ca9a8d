"""The reader-study protocol: a TOML file naming readers, cases, arms, design and questions.

Read with tomllib, written by hand for `medmpt study init`. Must not import Qt.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ARMS = ("unassisted", "ai_assisted")
DESIGNS = ("crossover", "randomised")


class ProtocolError(ValueError):
    """The protocol file is missing, unreadable or inconsistent (the message says what to fix)."""


@dataclass(frozen=True)
class Case:
    case_id: str
    path: Path
    truth: int | None = None  # optional binary reference (e.g. abnormal = 1), for the iMRMC export


@dataclass(frozen=True)
class Question:
    question_id: str
    text: str
    minimum: int = 1
    maximum: int = 5


@dataclass(frozen=True)
class Protocol:
    study_id: str
    readers: tuple[str, ...]
    cases: tuple[Case, ...]
    design: str = "crossover"
    seed: int = 0
    idle_threshold_s: float = 60.0
    washout_days: int = 28
    questions: tuple[Question, ...] = ()
    imrmc_score: str = ""  # the question whose answer is the iMRMC score ("" = none)
    arms: tuple[str, ...] = ARMS
    source: Path | None = field(default=None, compare=False)

    @property
    def sessions(self) -> int:
        return 2 if self.design == "crossover" else 1

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.case_id == case_id:
                return case
        raise KeyError(case_id)


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ProtocolError(f"{kind} {value!r} must be letters, digits, '_', '-' or '.'")
    return value


def load_protocol(path: Path) -> Protocol:
    """Read and validate a protocol; relative case paths are taken from the protocol's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProtocolError(f"no protocol file at {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProtocolError(f"cannot read the protocol {path}: {exc}") from None
    return protocol_from_dict(data, path)


def protocol_from_dict(data: dict, source: Path | None = None) -> Protocol:
    study = data.get("study") or {}
    base = source.parent if source is not None else Path.cwd()
    try:
        readers = tuple(_check_id("reader", r) for r in data.get("readers", []))
        cases = tuple(
            Case(_check_id("case id", c["id"]), (base / c["path"]).resolve() if not Path(c["path"]).is_absolute()
                 else Path(c["path"]), _truth(c.get("truth")))
            for c in data.get("cases", [])
        )
        questions = tuple(
            Question(_check_id("question id", q["id"]), str(q.get("text", q["id"])),
                     int(q.get("min", 1)), int(q.get("max", 5)))
            for q in data.get("questions", [])
        )
        protocol = Protocol(
            study_id=_check_id("study id", study.get("id", "")), readers=readers, cases=cases,
            design=str(study.get("design", "crossover")), seed=int(study.get("seed", 0)),
            idle_threshold_s=float(study.get("idle_threshold_s", 60.0)),
            washout_days=int(study.get("washout_days", 28)), questions=questions,
            imrmc_score=str(study.get("imrmc_score", "")), source=source,
        )
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"protocol entry is missing a field: {exc}") from None
    _validate(protocol)
    return protocol


def _truth(value) -> int | None:
    if value is None:
        return None
    if value not in (0, 1):
        raise ProtocolError(f"case truth must be 0 or 1, not {value!r}")
    return int(value)


def _validate(p: Protocol) -> None:
    if p.design not in DESIGNS:
        raise ProtocolError(f"design must be one of {', '.join(DESIGNS)}, not {p.design!r}")
    if not p.readers:
        raise ProtocolError("the protocol names no readers")
    if len(p.cases) < 2:
        raise ProtocolError("a reader study needs at least 2 cases")
    for kind, ids in (("reader", p.readers), ("case", [c.case_id for c in p.cases]),
                      ("question", [q.question_id for q in p.questions])):
        if len(set(ids)) != len(ids):
            raise ProtocolError(f"duplicate {kind} ids in the protocol")
    if p.idle_threshold_s <= 0:
        raise ProtocolError("idle_threshold_s must be positive")
    for q in p.questions:
        if q.minimum >= q.maximum:
            raise ProtocolError(f"question {q.question_id}: min must be below max")
    if p.imrmc_score and p.imrmc_score not in {q.question_id for q in p.questions}:
        raise ProtocolError(f"imrmc_score names no question: {p.imrmc_score!r}")


def _q(value: str) -> str:
    """A TOML basic string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def protocol_template(study_id: str, readers: list[str], case_paths: list[Path], seed: int,
                      design: str = "crossover") -> str:
    """The text of a new protocol (validated by parsing it back)."""
    lines = [
        "# MedMPT reader study protocol (human-AI collaboration in reporting).",
        "# design: 'crossover' = two sessions separated by a washout, each case read once per session,",
        "#   in opposite arms; 'randomised' = one session, each case's arm drawn from the seed.",
        "readers = [" + ", ".join(_q(r) for r in readers) + "]", "",
        "[study]", f"id = {_q(study_id)}", f"design = {_q(design)}", f"seed = {seed}",
        "idle_threshold_s = 60.0", "washout_days = 28",
        '# the question whose answer is exported for iMRMC (needs a truth 0/1 on every case)',
        'imrmc_score = "suspicion"', "",
    ]
    for i, path in enumerate(case_paths, start=1):
        lines += ["[[cases]]", f'id = "case{i:03d}"', f"path = {_q(str(Path(path).resolve()))}",
                  "# truth = 1  # reference standard (1 = abnormal), needed for the iMRMC export", ""]
    lines += [
        "[[questions]]", 'id = "confidence"', 'text = "Confidence in your report (1 = low, 5 = high)"',
        "min = 1", "max = 5", "",
        "[[questions]]", 'id = "suspicion"', 'text = "Likelihood that the study is abnormal (1-5)"',
        "min = 1", "max = 5", "",
    ]
    text = "\n".join(lines)
    protocol_from_dict(tomllib.loads(text))
    return text
