"""Picks the series the model should read (CT, axial, enough slices, lung/soft-tissue kernel).

Returns the choice with a reason a person can read; the caller may override by UID.
Must not import Qt or pydicom.
"""

from __future__ import annotations

from app.dicom.model import IndexResult, SeriesChoice, SeriesInfo

MIN_SLICES = 16
LUNG_KERNELS = (
    "LUNG",
    "B60",
    "B70",
    "B80",
    "BL57",
    "BL64",
    "I70",
    "BONEPLUS",
    "YC",
    "YD",
    "FC51",
    "FC52",
    "FC53",
    "FC55",
    "FC56",
    "L",
)
SOFT_KERNELS = (
    "STANDARD",
    "SOFT",
    "B30",
    "B31",
    "B40",
    "BR40",
    "BR36",
    "I30",
    "I40",
    "I41",
    "FC08",
    "FC13",
    "FC17",
    "FC18",
    "B",
    "C",
)


def _kernel_rank(kernel: str) -> tuple[int, str]:
    """(score, word): lung kernels score 2, soft-tissue 1, others 0."""
    names = [k.strip().upper() for k in kernel.split("\\") if k.strip()]
    if any(n in LUNG_KERNELS or "LUNG" in n for n in names):
        return 2, "lung"
    if any(n in SOFT_KERNELS or "SOFT" in n or "STANDARD" in n for n in names):
        return 1, "soft-tissue"
    return 0, "other"


def _unsuitable(series: SeriesInfo) -> str | None:
    if series.Modality != "CT":
        return f"Modality {series.Modality or 'missing'}"
    if not series.loadable:
        return "cannot be loaded"
    if series.orientation != "axial":
        return f"{series.orientation}, not axial"
    if len(series.slices) < MIN_SLICES:
        return f"only {len(series.slices)} slice(s) (need {MIN_SLICES})"
    return None


def _score(series: SeriesInfo) -> tuple[int, int, int, float]:
    thickness = series.slice_spacing or series.SliceThickness or 10.0
    clean = 0 if any("gap" in p or "tilt" in p for p in series.problems) else 1
    return (clean, _kernel_rank(series.ConvolutionKernel)[0], len(series.slices), -thickness)


def _describe(series: SeriesInfo) -> str:
    name = series.SeriesDescription or "no description"
    spacing = f"{series.slice_spacing:.2f} mm" if series.slice_spacing else "unknown spacing"
    return f"series {series.SeriesNumber or '?'} ({name}, {len(series.slices)} slices, {spacing})"


def choose_series(index: IndexResult, override_uid: str | None = None) -> SeriesChoice:
    """The series for the model and why; `override_uid` (SeriesInstanceUID or key) wins if found."""
    if override_uid:
        chosen = index.find_series(override_uid)
        if chosen is None:
            return SeriesChoice(None, "the requested series is not in the index")
        why = _unsuitable(chosen)
        warning = f" (warning: {why})" if why else ""
        return SeriesChoice(chosen, f"chosen by the user: {_describe(chosen)}{warning}")
    candidates = [s for s in index.series if _unsuitable(s) is None]
    if not candidates:
        if not index.series:
            return SeriesChoice(None, "no image series found")
        reasons = "; ".join(f"{_describe(s)}: {_unsuitable(s)}" for s in index.series[:6])
        return SeriesChoice(
            None, f"no series is an axial CT with at least {MIN_SLICES} slices: {reasons}"
        )
    best = max(candidates, key=_score)
    kernel = _kernel_rank(best.ConvolutionKernel)[1]
    reason = (
        f"{_describe(best)}: axial CT, {kernel} kernel ({best.ConvolutionKernel or 'not given'})"
    )
    others = len(candidates) - 1
    if others:
        reason += f"; preferred over {others} other suitable series (clean geometry, lung/soft-tissue kernel, more and thinner slices)"
    return SeriesChoice(best, reason)
