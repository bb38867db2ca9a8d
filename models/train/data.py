"""Training data: phantoms rendered small, preprocessed by inference.preprocess, cached as uint8.

Every training input is made by `inference.preprocess.preprocess` with the package's own
preprocessing spec, so training and inference cannot drift. Its output is an integer grey
level g in 0..255 per window mapped to g * (scale / std) - mean / std, so the cache keeps g as
uint8 and `grey_to_pixels` restores the exact float32 values. The cache is a memmap
(N, 32, 5, 224, 224) plus one JSON record per study (labels, report, slice map, findings).
The cache holds the reference's three windows, the ground-glass window
(models.export.package.GROUND_GLASS_WINDOW) and the lung window of the thin slab around each
slice (SLAB_WINDOW: the phantoms are rendered with the planes a third of the way to the slices
around each slice, `make_case(third_planes=True)`), so one cache serves every choice of input channels
(MedMPTConfig.input_channels): a model reads its channels through `input_grey`, which builds
them from the cached ones as the runtime builds them from the CT. Must not import app or ui.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.preprocess import CTInput, neighbour_channels, preprocess
from models.export.package import (
    GROUND_GLASS_WINDOW,
    PREPROCESSING,
    SLAB_WINDOW,
    preprocessing_spec,
)
from models.phantoms.case import PhantomCase, make_case
from models.train.config import (
    RENDER_RECIPE,
    RENDER_SIZES,
    RENDER_SLABS_MM,
    RENDER_SLICES,
    SEVERITY_CLASSES,
)

# What the cache holds: the reference's preprocessing with one window more (every window any
# input_channels choice shows).
SPEC = {**PREPROCESSING, "windows": [*PREPROCESSING["windows"], dict(GROUND_GLASS_WINDOW), dict(SLAB_WINDOW)]}
CACHED_WINDOWS = len(SPEC["windows"])
_NORM = SPEC["normalisation"]
_STEP = np.float32(float(_NORM["scale"]) / float(_NORM["std"]))
_OFFSET = np.float32(float(_NORM["mean"]) / float(_NORM["std"]))
FOCAL_TYPES = ("nodule", "effusion")


@dataclass
class StudyRecord:
    """What training and evaluation need to know about one cached study."""

    index: int
    seed: int
    size: int
    report: str
    severity: int  # index in SEVERITY_CLASSES
    nodule: int
    effusion: int
    original_indices: list[int]
    volume_shape: list[int]
    findings: list[dict[str, Any]] = field(default_factory=list)


def render_size(seed: int) -> int:
    """The in-plane matrix of training phantom `seed` (drawn from the seed)."""
    return int(np.random.default_rng([seed, 77]).choice(RENDER_SIZES))


def render_slab(seed: int) -> float:
    """The slice thickness (mm) of training phantom `seed`'s 32 sampled slices (from the seed)."""
    return float(np.random.default_rng([seed, 78]).choice(RENDER_SLABS_MM))


def render_case(seed: int, size: int | None = None, num_slices: int = RENDER_SLICES) -> PhantomCase:
    """Phantom `seed` rendered with the training recipe: its matrix, 32 thin slices over the chest,
    each with its planes a third of the way to the slices around it."""
    return make_case(seed, size=size or render_size(seed), num_slices=num_slices, slab_mm=render_slab(seed),
                     third_planes=True)


def ct_input(case: PhantomCase) -> CTInput:
    """The runtime's CT input for a phantom (slice 0 inferior, spacings from its geometry)."""
    geo = case.geometry
    return CTInput(case.hu, z_spacing_mm=float(geo.slice_thickness),
                   pixel_spacing_mm=(float(geo.pixel_spacing), float(geo.pixel_spacing)),
                   third_planes=case.third_planes)


def pixels_to_grey(pixel_values: np.ndarray) -> np.ndarray:
    """preprocess() pixel values -> the uint8 grey levels they were made from."""
    return np.rint((pixel_values + _OFFSET) / _STEP).astype(np.uint8)


def grey_to_pixels(grey: torch.Tensor) -> torch.Tensor:
    """uint8 grey levels -> float32 pixel values, bit-identical to preprocess()."""
    return grey.to(torch.float32) * torch.tensor(_STEP) - torch.tensor(_OFFSET)


def needs_neighbours(input_channels: str) -> bool:
    """Whether a slice's model input depends on its neighbouring sampled slices."""
    return any(w.get("slices") == "neighbours-max" for w in preprocessing_spec(input_channels)["windows"])


def _cached_key(window: dict) -> tuple:
    """Which cached window holds a window's grey levels: its HU range, and whether it shows the
    slab (a neighbour maximum is made from the slices' own window)."""
    return window["width"], window["level"], window.get("slices") == "slab-max"


def input_grey(grey: np.ndarray, input_channels: str) -> np.ndarray:
    """Cached grey levels (N, 5, H, W) of N consecutive sampled slices (the cache's windows) ->
    the model's input channels (N, 3, H, W) of those slices, as inference.preprocess makes them
    from the CT (the same window of the same slices, then the neighbour maximum where the spec asks)."""
    cached = [_cached_key(w) for w in SPEC["windows"]]
    windows = preprocessing_spec(input_channels)["windows"]
    out = np.stack([grey[:, cached.index(_cached_key(w))] for w in windows], axis=1)
    return neighbour_channels(out, {"windows": windows})


def severity_index(label: str) -> int:
    """CT-0..CT-3 -> 0..3 (CT-4, never planned by the phantoms, counts as CT-3)."""
    return min(int(label.split("-")[1]), len(SEVERITY_CLASSES) - 1)


def finding_json(finding) -> dict[str, Any]:
    """The parts of a ground-truth finding used for supervision and evaluation."""
    keep = ("type", "side", "lobe", "subtype", "size_mm", "severity", "slice_range", "box")
    data = {k: getattr(finding, k) for k in keep}
    data["slice_boxes"] = finding.slice_boxes if finding.type in FOCAL_TYPES else []
    return data


def record_of(case: PhantomCase, index: int, original_indices: np.ndarray) -> StudyRecord:
    types = {f.type for f in case.findings}
    return StudyRecord(
        index=index, seed=case.seed, size=int(case.geometry.columns), report=case.report,
        severity=severity_index(case.study["covid_severity"]), nodule=int("nodule" in types),
        effusion=int("effusion" in types), original_indices=[int(i) for i in original_indices],
        volume_shape=[int(s) for s in case.hu.shape], findings=[finding_json(f) for f in case.findings])


def render_study(seed: int, index: int = 0, size: int | None = None,
                 num_slices: int = RENDER_SLICES) -> tuple[np.ndarray, StudyRecord, PhantomCase]:
    """Render phantom `seed` small and preprocess it: (uint8 (32, 5, S, S) cached windows, record, case)."""
    case = render_case(seed, size, num_slices)
    prepared = preprocess(ct_input(case), SPEC)
    return pixels_to_grey(prepared.pixel_values[0]), record_of(case, index, prepared.original_indices), case


class StudyCache:
    """A folder holding pixels.u8 (memmap), done.u8 (rendered flags) and records.jsonl."""

    def __init__(self, root: Path, seeds: list[int]) -> None:
        self.root = Path(root)
        self.seeds = list(seeds)
        size = int(SPEC["image_size"])
        self.shape = (len(self.seeds), int(SPEC["num_slices"]), CACHED_WINDOWS, size, size)
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_seeds()
        self.pixels = self._memmap("pixels.u8", self.shape)
        self.done = self._memmap("done.u8", (len(self.seeds),))

    def _check_seeds(self) -> None:
        """Refuse a folder that caches other seeds or renders of another recipe."""
        path = self.root / "seeds.json"
        wanted = {"recipe": RENDER_RECIPE, "windows": CACHED_WINDOWS, "seeds": self.seeds}
        if path.exists():
            found = json.loads(path.read_text())
            if (not isinstance(found, dict) or found.get("recipe") != RENDER_RECIPE
                    or found.get("windows", 3) != CACHED_WINDOWS):
                raise ValueError(f"{self.root} caches phantoms rendered with an older recipe; "
                                 "choose another cache folder")
            if found.get("seeds") != self.seeds:
                raise ValueError(f"{self.root} caches other phantom seeds; choose another cache folder")
            return  # already this cache's: not rewritten, as render workers open it side by side
        partial = path.with_name(f"seeds.json.{os.getpid()}")
        partial.write_text(json.dumps(wanted))
        os.replace(partial, path)  # whole or absent for a reader at any moment

    def _memmap(self, name: str, shape: tuple[int, ...]) -> np.memmap:
        path = self.root / name
        mode = "r+" if path.exists() else "w+"
        return np.memmap(path, dtype=np.uint8, mode=mode, shape=shape)

    def records(self) -> list[StudyRecord]:
        """Records of the rendered studies, by index."""
        found: dict[int, StudyRecord] = {}
        for path in sorted(self.root.glob("records-*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    record = StudyRecord(**json.loads(line))
                    found[record.index] = record
        return [found[i] for i in sorted(found) if self.done[i]]

    def fill(self, workers: int = 2, log=print) -> None:
        """Render every missing study (in `workers` processes)."""
        todo = [i for i in range(len(self.seeds)) if not self.done[i]]
        if not todo:
            return
        jobs = [(str(self.root), self.seeds, todo[w::workers], w) for w in range(workers)]
        if workers == 1:
            _fill_worker(*jobs[0], log=log)
            return
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.starmap(_fill_worker, jobs)


def _fill_worker(root: str, seeds: list[int], indices: list[int], worker: int, log=None) -> None:
    torch.set_num_threads(1)
    cache = StudyCache(Path(root), seeds)
    with open(Path(root) / f"records-{worker}.jsonl", "a", encoding="utf-8") as out:
        for count, index in enumerate(indices):
            grey, record, _ = render_study(seeds[index], index)
            cache.pixels[index] = grey
            out.write(json.dumps(asdict(record)) + "\n")
            out.flush()
            cache.done[index] = 1
            if count % 100 == 0:
                cache.pixels.flush()
                cache.done.flush()
                print(f"cache worker {worker}: {count}/{len(indices)} studies", flush=True)
    cache.pixels.flush()
    cache.done.flush()


def training_seeds(cases: int, seed: int) -> list[int]:
    """Phantom seeds of a training run: seed * 1_000_000 + 0 .. cases-1."""
    if not 0 <= seed < 1000:
        raise ValueError(f"training seed must be in 0..999, got {seed}")
    return [seed * 1_000_000 + i for i in range(cases)]
