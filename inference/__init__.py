"""ONNX Runtime model runtime on numpy arrays.

Must not import PySide6, vtk, pydicom, SimpleITK, highdicom, torch, app/, ui/ or models/.

Public API (import from the modules; this package imports nothing on purpose)
----------------------------------------------------------------------------
``inference.runtime.ReportRuntime.load(path, device="auto"|"cuda"|"cpu", warmup=True)``
    Verifies the package (PackageError names a missing or altered file), opens the vision and
    decoder sessions once (CUDA fp16 with IO binding, else CPU fp32; any CUDA problem falls
    back to CPU and is listed in ``.notices``), warms them up. ``.device``, ``.model_info``.
``runtime.draft(CTInput, cancel=None) -> Generator[DraftProgress, None, ReportResult]``
    ``cancel``: any object with ``.cancelled`` or a ``threading.Event``; checked between
    tokens, and a model run in progress is terminated; raises ``errors.CancelledError``.
    ``runtime.draft_sync(ct, cancel, on_progress)`` runs it to the end; ``runtime.terminate()``.
``inference.preprocess.CTInput(hu (Z, Y, X), z_spacing_mm, pixel_spacing_mm, superior_first)``
``inference.result.ReportResult``: findings, impression, sentences (text, section, token span,
    relevance per ORIGINAL slice, most relevant slice), diagnosis {head: {class: p}}, model
    (name, version, hash, label), device, notices, timings, ``source`` (filled by the caller),
    ``heatmap_volume(sentence=None)`` (Z, Y, X) float32 0..1 computed on demand,
    ``slice_heatmap(z, sentence=None)``, ``to_dict()``.
``inference.package.load_package(path) -> ModelPackage``; ``inference.slices`` (32-slice rule).
"""
