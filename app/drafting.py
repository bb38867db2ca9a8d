"""Drafting a report for a loaded CT Volume: the app-level use case around the inference runtime.

Converts the Volume to the runtime's input, runs the draft as a task (Progress, cancel), and
binds the result to the series' StudyInstanceUID / SeriesInstanceUID, the model hash and a
request id, so a draft can never be shown against the wrong study. Must not import Qt, vtk,
DICOM libraries or torch.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from app.draft_checks import report_checks
from app.report_document import ReportDocument
from app.tasks import Cancelled, CancelToken, Progress
from app.volume import Volume
from inference.errors import CancelledError
from inference.preprocess import CTInput
from inference.result import ReportResult
from inference.runtime import ReportRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportDraft:
    """A drafted report bound to the series it was drafted for and the model that wrote it."""

    request_id: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    model_hash: str
    result: ReportResult = field(repr=False)
    created: str = ""  # ISO 8601 UTC
    series_problems: tuple[str, ...] = ()
    """What loading found wrong with the series the draft was made on (gaps, images that could not
    be read, missing rescale, tilt: app.volume.Volume.problems), shown and kept beside the draft."""

    def matches(self, volume: Volume) -> bool:
        """True when this draft belongs to `volume`'s study and series."""
        return (self.StudyInstanceUID, self.SeriesInstanceUID) == (
            volume.StudyInstanceUID, volume.SeriesInstanceUID)

    @property
    def section_texts(self) -> list[tuple[str, str]]:
        """The draft's sentences as (section, text), in order."""
        return [(s.section, s.text) for s in self.result.sentences]

    def document(self) -> ReportDocument:
        """A new editor document holding the draft's sentences, each marked AI-drafted."""
        return ReportDocument.from_ai_sentences(self.section_texts)

    @property
    def checks(self) -> list[str]:
        """Where the draft's text and its diagnosis heads clearly disagree, then where the text
        contradicts itself (app.draft_checks)."""
        return [check.message for check in report_checks(self.section_texts, self.result.diagnosis)]

    def to_dict(self) -> dict[str, Any]:
        data = self.result.to_dict()
        data.update({"request_id": self.request_id, "StudyInstanceUID": self.StudyInstanceUID,
                     "SeriesInstanceUID": self.SeriesInstanceUID, "model_hash": self.model_hash,
                     "created": self.created, "checks": self.checks,
                     "series_problems": list(self.series_problems)})
        return data


def ct_input(volume: Volume) -> CTInput:
    """The runtime's input for `volume` (no copy of the voxels)."""
    superior_first = float(volume.direction[2, 2]) < 0  # z index axis points toward the feet
    return CTInput(volume.voxels, float(volume.spacing[0]), (float(volume.spacing[1]), float(volume.spacing[2])),
                   superior_first=superior_first, z_offsets_mm=volume.slice_offsets_mm)


def draft_report_task(
    volume: Volume, runtime: ReportRuntime, cancel: CancelToken | Any | None = None
) -> Generator[Progress, None, ReportDraft]:
    """Draft a report for `volume`; yields Progress, raises app.tasks.Cancelled when cancelled."""
    request_id = str(uuid.uuid4())
    active = threading.Event()
    active.set()

    def terminate_run() -> None:  # only while this task runs: the runtime is shared
        if active.is_set():
            runtime.terminate()

    if cancel is not None and hasattr(cancel, "on_cancel"):
        cancel.on_cancel(terminate_run)
    log.info("report draft %s started on %s", request_id, runtime.device)
    try:
        result = yield from _progress(runtime.draft(ct_input(volume), cancel))
    except CancelledError as exc:
        log.info("report draft %s cancelled after %d token(s)", request_id, exc.tokens_generated)
        raise Cancelled() from exc
    finally:
        active.clear()
    result.source.update({"StudyInstanceUID": volume.StudyInstanceUID,
                          "SeriesInstanceUID": volume.SeriesInstanceUID, "request_id": request_id})
    log.info("report draft %s finished: %d tokens in %.0f ms", request_id, len(result.tokens),
             result.timings.total_ms)
    return ReportDraft(request_id, volume.StudyInstanceUID, volume.SeriesInstanceUID,
                       result.model.model_hash, result,
                       dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), tuple(volume.problems))


def _progress(task: Generator[Any, None, ReportResult]) -> Generator[Progress, None, ReportResult]:
    while True:
        try:
            step = next(task)
        except StopIteration as stop:
            return stop.value
        yield Progress(step.fraction, step.message)
