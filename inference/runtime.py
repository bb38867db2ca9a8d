"""The report runtime: load a package once, then draft reports for CT volumes (numpy in/out).

`ReportRuntime.draft()` is a generator task: it yields DraftProgress (per model stage and per
generated token), stops between tokens or terminates a model run when the cancel token is set
(raising CancelledError), and returns a ReportResult. A GPU failure during a draft switches to
CPU with a notice and drafts again. Must not import onnxruntime directly (see ort_runtime),
app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from inference.calibration import apply_temperature
from inference.cancel import is_cancelled
from inference.decoder_step import (
    STATIC_CACHE_SWAP,
    STATIC_PACKED_INPUTS,
    STATIC_PACKED_OUTPUTS,
    KVCacheStep,
    StaticKVCacheStep,
)
from inference.errors import CancelledError, InferenceError, PackageError
from inference.explain import Explanation
from inference.generation import beam_search
from inference.ort_runtime import FixedBinding, OrtModel
from inference.package import ModelPackage, load_package
from inference.preprocess import CTInput, preprocess
from inference.result import DraftProgress, ModelInfo, ReportResult, Sentence, Timings
from inference.text import ReportTokenizer, split_report

log = logging.getLogger(__name__)
_VISION_START, _DECODE_START, _DECODE_END = 0.05, 0.3, 0.95


class ReportRuntime:
    """A loaded model package with its sessions (created once, reused for every study)."""

    def __init__(self, package: ModelPackage, device: str = "auto", warmup: bool = True,
                 threads: int | None = None) -> None:
        self.package = package
        self.model = OrtModel.open(package, device, threads)
        _check_graph_names(self.model, package)
        self.tokenizer = ReportTokenizer(package.tokenizer_path)
        self.requested_device = device
        self._fixed: FixedBinding | None = None  # the static decoder's buffers, made once
        self._fixed_vision: FixedBinding | None = None  # the one-scan vision graph's buffers
        if warmup:
            self._warm_up()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", warmup: bool = True,
             threads: int | None = None) -> ReportRuntime:
        """Verify the package at `path` (SHA-256 pins) and open it on `device`."""
        return cls(load_package(path), device, warmup, threads)

    @property
    def device(self) -> str:
        return self.model.device

    @property
    def notices(self) -> list[str]:
        return list(self.model.notices)

    @property
    def model_info(self) -> ModelInfo:
        p = self.package
        return ModelInfo(p.name, p.version, p.display_name, p.model_hash, p.label, p.clinical_use)

    def terminate(self) -> None:
        """Stop a model run in progress (from any thread); the draft raises CancelledError."""
        self.model.terminate()

    def draft_sync(self, ct: CTInput, cancel: Any = None,
                   on_progress: Callable[[DraftProgress], Any] | None = None) -> ReportResult:
        """Run draft() to the end on this thread."""
        task = self.draft(ct, cancel)
        while True:
            try:
                progress = next(task)
            except StopIteration as stop:
                return stop.value
            if on_progress is not None:
                on_progress(progress)

    def draft(self, ct: CTInput, cancel: Any = None) -> Generator[DraftProgress, None, ReportResult]:
        """Draft a report for `ct`; on a GPU failure, retry once on CPU (with a notice)."""
        try:
            return (yield from self._draft_once(ct, cancel))
        except InferenceError:  # cancelled, or bad input: the same on any device
            raise
        except Exception as exc:
            if self.model.device != "cuda":
                raise
            reason = _reason(exc)
            if self.model.static_decoder is not None:  # first without the CUDA-graph decoder
                self._drop_static_decoder(reason)
                return (yield from self.draft(ct, cancel))
            self.model.fall_back_to_cpu(reason)
        return (yield from self._draft_once(ct, cancel))

    def _vision(self, pixel_values: np.ndarray) -> dict[str, np.ndarray]:
        """The vision outputs for one scan: on the one-scan graph (a replayed CUDA graph) where
        there is one, else on the ordinary session; a failure of the former drops it for good
        and runs the latter."""
        graph = self.model.fixed_vision
        if graph is None or pixel_values.shape[0] != 1:
            return self.model.vision.run({"pixel_values": pixel_values})
        try:
            if self._fixed_vision is None or self._fixed_vision.graph is not graph:
                self._fixed_vision = FixedBinding(graph, {})
            self._fixed_vision.set("pixel_values", pixel_values)
            self._fixed_vision.run()
            return self._fixed_vision.outputs()
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the ordinary session runs the same graph
            self.model.drop_fixed_vision(_reason(exc))
            self._fixed_vision = None
            return self.model.vision.run({"pixel_values": pixel_values})

    def _drop_static_decoder(self, reason: str) -> None:
        self.model.drop_static_decoder(reason)
        self._fixed = None

    def _step_function(self, vision: dict[str, np.ndarray], beams: int, max_steps: int) -> Any:
        """The fixed-shape decoder (CUDA graphs) when the device has it and it fits the search,
        else the dynamic KV-cache decoder."""
        graph = self.model.static_decoder
        if graph is not None:
            try:
                if self._fixed is None or self._fixed.graph is not graph:
                    self._fixed = FixedBinding(graph, STATIC_CACHE_SWAP, STATIC_PACKED_INPUTS, STATIC_PACKED_OUTPUTS)
                if StaticKVCacheStep.holds(self._fixed, beams, max_steps):
                    return StaticKVCacheStep(self._fixed, vision["cross_keys"], vision["cross_values"])
            except CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a package's graph without fixed shapes
                self._drop_static_decoder(_reason(exc))
        return KVCacheStep(self.model.decoder, vision["cross_keys"], vision["cross_values"])

    def _draft_once(self, ct: CTInput, cancel: Any) -> Generator[DraftProgress, None, ReportResult]:
        yield DraftProgress(0.0, "Preparing the CT for the model", "preprocess")
        t0 = time.perf_counter()
        prepared = preprocess(ct, self.package.preprocessing)
        t1 = time.perf_counter()
        _raise_if_cancelled(cancel, 0)
        yield DraftProgress(_VISION_START, f"Reading the scan on {self.device.upper()}", "vision")
        with self._terminate_on_cancel(cancel):
            vision = self._vision(prepared.pixel_values)
        t2 = time.perf_counter()
        decoded = yield from self._decode(vision, cancel)
        t3 = time.perf_counter()
        yield DraftProgress(_DECODE_END, "Linking sentences to slices", "explain", len(decoded.tokens))
        explanation = Explanation(decoded.cross_attention, vision["patch_relevance"][0],
                                  prepared.original_indices, prepared.volume_shape)
        text = self.tokenizer.decode(decoded.tokens)
        findings, impression, parts = split_report(text, self.tokenizer.token_ends(decoded.tokens))
        sentences = []
        for part in parts:
            relevance = explanation.slice_relevance(part.token_start, part.token_end)
            sentences.append(Sentence(part.text, part.section, part.token_start, part.token_end,
                                      relevance, int(np.argmax(relevance))))
        t4 = time.perf_counter()
        timings = Timings(*(1000.0 * d for d in (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))
        yield DraftProgress(1.0, "Report drafted", "explain", len(decoded.tokens))
        return ReportResult(
            findings=findings, impression=impression, text=text, sentences=sentences,
            diagnosis=self._diagnosis(vision), model=self.model_info, device=self.device,
            notices=self.notices, timings=timings, tokens=decoded.tokens,
            original_indices=prepared.original_indices, volume_shape=prepared.volume_shape,
            explanation=explanation,
        )

    def _decode(self, vision: dict[str, np.ndarray], cancel: Any) -> Generator[DraftProgress, None, Any]:
        tokens, generation = self.package.tokens, self.package.generation
        max_steps = int(min(generation.get("max_steps", 120), self.package.manifest["tokens"].get("max_length", 120)))
        beams = int(generation.get("beams", 2))
        step = self._step_function(vision, beams, max_steps)
        search = beam_search(step, tokens["bos"], tokens["eos"], beams,
                             max_steps, bool(generation.get("no_repeat_previous", True)), cancel)
        span = _DECODE_END - _DECODE_START
        while True:
            try:
                progress = next(search)
            except StopIteration as stop:
                return stop.value
            yield DraftProgress(_DECODE_START + span * progress.step / progress.max_steps,
                                f"Writing the report ({progress.step} tokens)", "decode", progress.step,
                                self.tokenizer.decode(progress.tokens))

    def diagnose(self, ct: CTInput, calibrated: bool = True) -> dict[str, dict[str, float]]:
        """The diagnosis heads alone (no report): {head: {class: probability}}; `calibrated`
        False gives the graph's own probabilities (for fitting a calibration)."""
        prepared = preprocess(ct, self.package.preprocessing)
        return self._diagnosis(self._vision(prepared.pixel_values), calibrated)

    def _diagnosis(self, vision: dict[str, np.ndarray], calibrated: bool = True) -> dict[str, dict[str, float]]:
        result = {}
        for head in self.package.diagnosis_heads:
            probabilities = vision.get(f"diag_{head.name}")
            if probabilities is None:
                continue
            values = apply_temperature(probabilities[0], head.temperature) if calibrated else probabilities[0]
            result[head.name] = {c: float(p) for c, p in zip(head.classes, values, strict=False)}
        return result

    @contextmanager
    def _terminate_on_cancel(self, cancel: Any) -> Iterator[None]:
        """While a model run is in progress, a watcher terminates it once `cancel` is set."""
        if cancel is None:
            yield
            return
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.02):
                if is_cancelled(cancel):
                    self.model.terminate()
                    return

        watcher = threading.Thread(target=watch, name="medmpt-cancel-watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
        _raise_if_cancelled(cancel, 0)

    def _warm_up(self) -> None:
        size = int(self.package.preprocessing["image_size"])
        slices = int(self.package.preprocessing["num_slices"])
        t0 = time.perf_counter()
        pixels = np.zeros((1, slices, 3, size, size), np.float32)
        vision = self.model.vision.run({"pixel_values": pixels})
        if self.model.fixed_vision is not None:
            for _ in range(3):  # ONNX Runtime captures the CUDA graph after the first runs
                self._vision(pixels)
        step = KVCacheStep(self.model.decoder, vision["cross_keys"], vision["cross_values"])
        step.step(np.array([[self.package.tokens["bos"]]], dtype=np.int64))
        if self.model.static_decoder is not None:
            try:  # ONNX Runtime captures each CUDA graph after its first runs: do them now
                fixed = self._step_function(vision, 1, 1)
                for _ in range(6):
                    fixed.step(np.array([[self.package.tokens["bos"]]], dtype=np.int64))
            except Exception as exc:  # noqa: BLE001 - the dynamic decoder still works
                self._drop_static_decoder(_reason(exc))
        log.info("model %s warmed up on %s in %.0f ms", self.package.name, self.device,
                 1000 * (time.perf_counter() - t0))


VISION_INPUTS = ("pixel_values",)
VISION_OUTPUTS = ("patch_relevance", "cross_keys", "cross_values")
DECODER_INPUTS = ("input_ids", "past_keys", "past_values", "cross_keys", "cross_values")
DECODER_OUTPUTS = ("logits", "present_keys", "present_values", "cross_attention")


def _check_graph_names(model: OrtModel, package: ModelPackage) -> None:
    """Raise PackageError when a graph lacks an input or output of docs/model-package.md."""
    for label, graph, inputs, outputs in (
        ("vision", model.vision, VISION_INPUTS, VISION_OUTPUTS + tuple(f"diag_{h.name}" for h in package.diagnosis_heads)),
        ("decoder", model.decoder, DECODER_INPUTS, DECODER_OUTPUTS),
    ):
        missing = [n for n in inputs if n not in graph.input_types] + [n for n in outputs if n not in graph.output_names]
        if missing:
            raise PackageError(f"the {label} graph of {package.name} lacks {', '.join(missing)} (see docs/model-package.md)")


def _reason(exc: BaseException) -> str:
    """An exception's message on one line, at most 160 characters (for notices and the log)."""
    return " ".join(str(exc).split())[:160]


def _raise_if_cancelled(cancel: Any, tokens: int) -> None:
    if is_cancelled(cancel):
        raise CancelledError("report drafting cancelled", tokens_generated=tokens)
