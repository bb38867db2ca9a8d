"""`medmpt bench view PATH`: time to the first slice after choosing a series, and per-slice render.

Measures, in one run: (1) choose series -> load volume -> first axial slice painted in the
widget; (2) the median time to render one slice (window/level + heatmap blend + QImage + paint
into the widget's image) while scrolling; (3) the 3-D view (900 x 800) with the heatmap: opening
it, a frame while rotating, the still frame, and a frame at one ray per pixel beside them.
Prints figures and the frames per second they allow.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="DICOM folder, files, zip or DICOMDIR")
    parser.add_argument("--runs", type=int, default=5, help="repetitions of the first-slice measurement")
    parser.add_argument("--slices", type=int, default=200, help="slices rendered for the per-slice median")
    parser.add_argument("--frames", type=int, default=5, help="3-D frames per quality for the 3-D medians")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from app.study import load_series_task, open_sources_task
    from app.tasks import run_sync
    from app.viewing import heat_to_uint8
    from ui.slice_view import SliceView

    app = QApplication.instance() or QApplication([])
    t0 = time.perf_counter()
    study = run_sync(open_sources_task([args.path]))
    index_ms = (time.perf_counter() - t0) * 1000
    if study.choice.series is None:
        print(f"no series to show: {study.choice.reason}")
        return 2
    view = SliceView("axial")
    view.resize(768, 768)
    canvas = QImage(768, 768, QImage.Format.Format_RGB32)
    first: list[float] = []
    for _ in range(args.runs):
        t = time.perf_counter()
        volume = run_sync(load_series_task(study))
        view.set_volume(volume)
        view.render(canvas)  # paints through paintEvent into an image, as the screen would get it
        first.append((time.perf_counter() - t) * 1000)
    rng = np.random.default_rng(0)
    heat = heat_to_uint8(rng.random(volume.shape, dtype=np.float32) ** 4)
    per_slice = {"window/level only": [], "with heatmap blend": []}
    for label, h in (("window/level only", None), ("with heatmap blend", heat)):
        view.set_heat(h)
        for i in range(args.slices):
            t = time.perf_counter()
            view.set_index(i % volume.shape[0])
            view.render(canvas)
            per_slice[label].append((time.perf_counter() - t) * 1000)
    z, y, x = volume.shape
    print(f"series: {z} x {y} x {x} voxels ({volume.voxels.dtype}); header index {index_ms:.0f} ms (once)")
    print(f"first slice after choosing the series (load + first paint): median {statistics.median(first):.0f} ms "
          f"over {args.runs} runs (min {min(first):.0f}, max {max(first):.0f}); target <= 300 ms")
    for label, times in per_slice.items():
        median = statistics.median(times)
        print(f"per-slice render, {label}: median {median:.2f} ms ({1000 / median:.0f} frames/s); target <= 8 ms")
    _bench_3d(volume, heat, args.frames)
    app.processEvents()
    return 0


def _bench_3d(volume, heat, frames: int) -> None:
    """3-D view frames at the qualities the widget uses, and at one ray per pixel, side by side."""
    from ui.volume_view import VolumeView

    view = VolumeView()
    view.resize(900, 800)
    t = time.perf_counter()
    view.set_volume(volume, heat)  # builds the VTK image and casts the first still frame
    opening = (time.perf_counter() - t) * 1000
    camera = view.renderer.GetActiveCamera()
    widget_budget = view.ray_budget

    def frame(render) -> float:
        camera.Azimuth(7)
        t = time.perf_counter()
        render()
        return (time.perf_counter() - t) * 1000

    def full_quality() -> None:  # one ray per pixel, 1 mm along the ray: what the view cast before
        view.ray_budget = (math.inf, math.inf)
        try:
            view.render_image()
        finally:
            view.ray_budget = widget_budget

    measured = {"while rotating": [], "still": [], "one ray per pixel": []}
    for _ in range(frames):  # interleaved, so machine load affects each alike
        measured["while rotating"].append(frame(lambda: view.render_image(moving=True)))
        measured["still"].append(frame(view.render_image))
        measured["one ray per pixel"].append(frame(full_quality))
    full = statistics.median(measured["one ray per pixel"])
    print(f"3-D view 900 x 800 with heatmap: opening (first still frame) {opening:.0f} ms")
    for label, times in measured.items():
        median = statistics.median(times)
        print(f"3-D frame, {label}: median {median:.0f} ms ({1000 / median:.1f} frames/s; {full / median:.1f}x "
              "faster than one ray per pixel)")
