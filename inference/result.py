"""The runtime's result dataclasses: report text, sentences, diagnosis, provenance, timings.

Must not import onnxruntime, app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.explain import Explanation


@dataclass(frozen=True)
class ModelInfo:
    """Which model drafted a report (for provenance and on-screen labels)."""

    name: str
    version: str
    display_name: str
    model_hash: str  # SHA-256 of the package's manifest.json
    label: str  # "synthetic, not for clinical use" when the package is not for clinical use
    clinical_use: bool


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent per stage of one draft."""

    preprocess_ms: float = 0.0
    vision_ms: float = 0.0
    decode_ms: float = 0.0
    explain_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.vision_ms + self.decode_ms + self.explain_ms


@dataclass(frozen=True)
class Sentence:
    """One report sentence and the original CT slices it draws on."""

    text: str
    section: str  # "FINDINGS" or "IMPRESSION"
    token_start: int
    token_end: int  # exclusive
    slice_relevance: np.ndarray = field(repr=False)  # (Z,) over ORIGINAL slices, max 1
    most_relevant_slice: int = 0  # original slice index (0 = most inferior)


@dataclass(frozen=True)
class DraftProgress:
    """Progress of a draft: fraction in [0, 1], a message, the stage and tokens so far."""

    fraction: float
    message: str
    stage: str  # "preprocess" | "vision" | "decode" | "explain"
    tokens: int = 0
    text: str = ""  # while decoding: the best report text so far (may change until the end)


@dataclass
class ReportResult:
    """A drafted report with its explanation; `source` is filled by the caller (e.g. UIDs)."""

    findings: str
    impression: str
    text: str
    sentences: list[Sentence]
    diagnosis: dict[str, dict[str, float]]
    model: ModelInfo
    device: str
    notices: list[str]
    timings: Timings
    tokens: tuple[int, ...]
    original_indices: np.ndarray = field(repr=False)  # (32,) original slice of each model slice
    volume_shape: tuple[int, int, int] = (0, 0, 0)
    source: dict[str, Any] = field(default_factory=dict)
    explanation: Explanation | None = field(default=None, repr=False)
    _volumes: dict[int | None, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def report_relevance(self) -> np.ndarray:
        """(Z,) relevance of each original slice for the whole report, max 1."""
        return self._explanation().slice_relevance()

    def heatmap_volume(self, sentence: int | None = None) -> np.ndarray:
        """(Z, Y, X) float32 heatmap in 0..1 for one sentence or (None) the whole report."""
        if sentence not in self._volumes:
            explanation = self._explanation()
            if sentence is None:
                self._volumes[None] = explanation.heatmap_volume()
            else:
                chosen = self.sentences[sentence]
                self._volumes[sentence] = explanation.heatmap_volume(chosen.token_start, chosen.token_end)
        return self._volumes[sentence]

    def heatmap_uint8(self, sentence: int | None = None) -> np.ndarray:
        """The (Z, Y, X) uint8 (0..255) heatmap the viewer shows, computed afresh, not kept:
        a reader clicking through the sentences of a thin-slice series must not collect a
        float32 volume per sentence."""
        explanation = self._explanation()
        if sentence is None:
            return explanation.heatmap_uint8()
        chosen = self.sentences[sentence]
        return explanation.heatmap_uint8(chosen.token_start, chosen.token_end)

    def slice_heatmap(self, z: int, sentence: int | None = None) -> np.ndarray:
        """(Y, X) heatmap of original slice z (cheaper than a whole volume)."""
        relevance = self.report_relevance if sentence is None else self.sentences[sentence].slice_relevance
        return self._explanation().slice_heatmap(z, relevance)

    def _explanation(self) -> Explanation:
        if self.explanation is None:
            raise ValueError("this result carries no explanation data")
        return self.explanation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no volumes)."""
        return {
            "findings": self.findings, "impression": self.impression, "text": self.text,
            "sentences": [{
                "text": s.text, "section": s.section, "token_span": [s.token_start, s.token_end],
                "most_relevant_slice": s.most_relevant_slice,
                "slice_relevance": [round(float(v), 4) for v in s.slice_relevance],
            } for s in self.sentences],
            "diagnosis": self.diagnosis,
            "model": {"name": self.model.name, "version": self.model.version,
                      "display_name": self.model.display_name, "hash": self.model.model_hash,
                      "label": self.model.label, "clinical_use": self.model.clinical_use},
            "device": self.device, "notices": list(self.notices),
            "timings_ms": {"preprocess": self.timings.preprocess_ms, "vision": self.timings.vision_ms,
                           "decode": self.timings.decode_ms, "explain": self.timings.explain_ms},
            "tokens": len(self.tokens), "sampled_slices": [int(i) for i in self.original_indices],
            "volume_shape": list(self.volume_shape), "source": dict(self.source),
        }
