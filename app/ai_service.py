"""The workstation's AI service: loads the model package once and drafts reports as tasks.

Qt-free. The runtime (ONNX Runtime sessions) is created on first use, on whatever thread runs
the task (the UI runs it on its single inference thread) and reused for every study.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from app import paths
from app.drafting import ReportDraft, draft_report_task
from app.tasks import CancelToken, Progress
from app.volume import Volume
from inference.package import DiagnosisHead, load_package
from inference.runtime import ReportRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSummary:
    """What the UI shows about the loaded model."""

    display_name: str
    version: str
    label: str
    clinical_use: bool
    device: str
    notices: tuple[str, ...]
    model_hash: str
    head_notes: tuple[tuple[str, str], ...] = ()  # (head, how far its probabilities can be trusted)

    @property
    def caption(self) -> str:
        text = f"{self.display_name} {self.version} on {self.device.upper()}"
        return f"{text} \u2014 {self.label}" if self.label else text


def head_note(head: DiagnosisHead) -> str:
    """How far a diagnosis head's probabilities can be trusted, from its package's calibration
    record: calibrated or not, and how well it separated the classes on which studies (for the
    phantom model: phantoms, which says nothing about real patients)."""
    record = head.calibration or {}
    if not record:
        return "uncalibrated probabilities"
    if record.get("auc") is not None:
        separation = f"AUC {float(record['auc']):.2f}"
    elif record.get("accuracy") is not None:
        separation = f"accuracy {float(record['accuracy']):.0%}"
    else:
        return "calibrated"
    data = str(record.get("data") or (f"{record['studies']} validation studies" if record.get("studies") else ""))
    return f"calibrated; {separation}" + (f" on {data}" if data else "")


class AiService:
    """Owns one ReportRuntime; `load_task` loads it (the workstation at launch), `draft_task`
    on first use if it is not loaded yet."""

    def __init__(self, model_dir: Path | None = None, device: str = "auto") -> None:
        self.model_dir = model_dir if model_dir is not None else paths.default_model_dir()
        self.device = device
        self._runtime: ReportRuntime | None = None
        self._load_lock = threading.Lock()  # a launch-time load and a draft may ask at once

    @property
    def available(self) -> bool:
        return self.model_dir is not None

    def package_caption(self) -> str:
        """The model's name and label from its manifest, before it is loaded."""
        if self.model_dir is None:
            return "No model package: AI drafting unavailable"
        try:
            package = load_package(self.model_dir, verify=False)
        except Exception as exc:  # shown to the user, never a crash
            return f"Model package unusable: {exc}"
        text = f"{package.display_name} {package.version}"
        return f"{text} \u2014 {package.label}" if package.label else text

    @property
    def summary(self) -> ModelSummary | None:
        runtime = self._runtime
        if runtime is None:
            return None
        info = runtime.model_info
        return ModelSummary(info.display_name, info.version, info.label, info.clinical_use,
                            runtime.device, tuple(runtime.notices), info.model_hash,
                            tuple((h.name, head_note(h)) for h in runtime.package.diagnosis_heads))

    def load_task(self, cancel: CancelToken | None = None) -> Generator[Progress, None, ModelSummary]:
        if self._runtime is None:
            if self.model_dir is None:
                raise FileNotFoundError("no model package: none is bundled and none was chosen")
            yield Progress(0.0, "Loading the model (verifying package, warming up)\u2026")
            with self._load_lock:
                if self._runtime is None:
                    self._runtime = ReportRuntime.load(self.model_dir, device=self.device)
                    log.info("model loaded on %s", self._runtime.device)
        yield Progress(1.0, "Model ready")
        return self.summary

    def draft_task(self, volume: Volume, cancel: CancelToken | None = None) -> Generator[Progress, None, ReportDraft]:
        yield from self.load_task(cancel)
        return (yield from draft_report_task(volume, self._runtime, cancel))


def heat_uint8_task(draft: ReportDraft, sentence: int | None, cancel: CancelToken | None = None):
    """The (Z, Y, X) uint8 heatmap of one sentence (None: the whole report), as a task."""
    yield Progress(0.0, "Computing the heatmap\u2026")
    return draft.result.heatmap_uint8(sentence)
