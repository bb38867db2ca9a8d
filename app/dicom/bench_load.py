"""`medmpt bench load PATH`: our loader vs SimpleITK, a plain pydicom loop and raw reads.

Times the methods interleaved in one process (median of --repeat runs), then measures each
method's peak memory above its baseline in a fresh subprocess. "ours" is the cold path (no index
cache: every header parsed, by the header worker processes the workstation starts at launch);
"ours-1proc" is the same with every header parsed in this process (a one-off command on a small
folder); "ours-warm" reopens with the persistent index cache ready (kept in a temporary data dir,
so the user's cache is left alone). Prints figures; asserts nothing.
Must not import Qt.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

METHODS = ("ours", "ours-1proc", "ours-warm", "simpleitk", "pydicom", "raw")
PHASES = ("ours-load", "simpleitk-read")
"""Second halves only: loading from a ready index / reading ready file names (timed, no memory)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="folder holding one CT series")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="write a 512 x 512 x 400 series to a temporary folder and use it",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per method (default 5)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-method memory runs")
    parser.add_argument("--memory-of", choices=METHODS, help=argparse.SUPPRESS)


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def run_ours(folder: Path, use_cache: bool = False, parallel: bool = True) -> np.ndarray:
    from app.dicom import choose_series, index_sources, load_volume

    choice = choose_series(index_sources(folder, use_cache=use_cache, parallel=parallel))
    if choice.series is None:
        raise SystemExit(f"no series to load: {choice.reason}")
    return load_volume(choice.series).voxels


def run_simpleitk(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayViewFromImage(reader.Execute())


def run_pydicom(folder: Path) -> np.ndarray:
    import pydicom

    slices = []
    for path in _dicom_files(folder):
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue
        if "PixelData" not in ds:
            continue
        normal = np.cross(*np.reshape(np.array(ds.ImageOrientationPatient, float), (2, 3)))
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        slices.append((float(np.dot(normal, np.array(ds.ImagePositionPatient, float))), hu))
    slices.sort(key=lambda item: item[0])
    return np.stack([hu for _, hu in slices])


def run_raw(folder: Path) -> int:
    return sum(len(path.read_bytes()) for path in _dicom_files(folder))


def run_ours_warm(folder: Path) -> np.ndarray:
    return run_ours(folder, use_cache=True)


def run_ours_1proc(folder: Path) -> np.ndarray:
    return run_ours(folder, parallel=False)


def _prime_cache(folder: Path) -> None:
    """Fill the index cache; waits until the files are old enough to be cached (settled)."""
    from app.dicom.index_cache import SETTLE_SECONDS

    newest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in _dicom_files(folder))
    time.sleep(max(0.0, newest + SETTLE_SECONDS + 0.1 - time.time()))
    run_ours_warm(folder)


RUNNERS: dict[str, Callable[[Path], object]] = {
    "ours": run_ours,
    "ours-1proc": run_ours_1proc,
    "ours-warm": run_ours_warm,
    "simpleitk": run_simpleitk,
    "pydicom": run_pydicom,
    "raw": run_raw,
}


def _phase_runners(folder: Path) -> dict[str, Callable[[Path], object]]:
    """Runners for the load phase alone, with the index / file names prepared beforehand."""
    import SimpleITK as sitk

    from app.dicom import choose_series, index_sources, load_volume

    series = choose_series(index_sources(folder, use_cache=False)).series
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))

    def read_sitk(_: Path) -> object:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(names)
        return reader.Execute()

    return {"ours-load": lambda _: load_volume(series), "simpleitk-read": read_sitk}


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> int:
    """Current RSS, after resetting the peak to it (Linux); the rusage peak elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_kb("VmRSS") or _peak_rss()


def _peak_rss() -> int:
    peak = _status_kb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_child(method: str, folder: Path) -> int:
    """In a fresh process: import everything, note the peak RSS, run once, print the increase."""
    import pydicom  # noqa: F401 - imported so every method starts from the same baseline
    import SimpleITK  # noqa: F401

    import app.dicom

    if method == "ours":
        app.dicom.warm_up_header_workers(background=False)  # as the workstation does at launch
    baseline = _reset_peak()
    result = RUNNERS[method](folder)
    print(json.dumps({"peak_above_baseline": _peak_rss() - baseline, "kept": id(result) > 0}))
    return 0


def _memory(method: str, folder: Path) -> int | None:
    command = [sys.executable, "-m", "app.dicom.bench_load", str(folder), "--memory-of", method]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )
    try:
        return int(json.loads(done.stdout.strip().splitlines()[-1])["peak_above_baseline"])
    except (ValueError, IndexError, KeyError):
        return None


def _write_synthetic(folder: Path) -> None:
    from app.dicom.synthetic import SeriesSpec, write_series

    print(f"writing a synthetic 512 x 512 x 400 series to {folder} ...", flush=True)
    write_series(
        folder,
        SeriesSpec(count=400, rows=512, columns=512, slice_spacing=1.0, pixel_spacing=(0.7, 0.7)),
    )


def _report(
    folder: Path, times: dict[str, list[float]], memory: dict[str, int | None], voxels: int
) -> None:
    volume_bytes = voxels * 2
    size = sum(p.stat().st_size for p in _dicom_files(folder))
    print(
        f"series: {folder} ({len(_dicom_files(folder))} files, {size / 1e6:.1f} MB; "
        f"volume {volume_bytes / 1e6:.1f} MB as int16); CPU cores available: {os.cpu_count()}"
    )
    median = {m: statistics.median(t) for m, t in times.items()}
    print(
        f"{'method':<15} {'median s':>9} {'/ ours':>7} {'/ raw':>7} {'peak MB':>9} {'peak/volume':>12}"
    )
    for method in (*METHODS, *PHASES):
        peak = memory.get(method)
        peak_text = (
            f"{peak / 1e6:9.1f} {peak / volume_bytes:12.2f}"
            if peak is not None
            else f"{'-':>9} {'-':>12}"
        )
        mine = median["ours-load"] if method in PHASES else median["ours"]
        print(
            f"{method:<15} {median[method]:9.3f} {median[method] / mine:7.2f} "
            f"{median[method] / median['raw']:7.1f} {peak_text}"
        )
    print(
        f"ours (index + load) is {median['simpleitk'] / median['ours']:.2f}x faster than SimpleITK "
        f"and {median['ours'] / median['raw']:.1f}x the raw read; loading alone is "
        f"{median['simpleitk-read'] / median['ours-load']:.2f}x faster than SimpleITK's Execute"
    )
    _report_cold_warm(median, memory, volume_bytes)
    print(
        "(ours = index headers + choose + load, cold: no index cache, every header parsed by the "
        "header worker processes; ours-1proc = the same, headers parsed in this process; "
        "ours-warm = the same with the persistent index cache ready (reopening a study); "
        "simpleitk = GDCM series file names + Execute; pydicom = dcmread + pixel_array + sort; "
        "raw = read every file's bytes; *-load/-read = second phase only, / ours compares with "
        "ours-load; peak = RSS high-water mark above the post-import baseline, once per method "
        "in a fresh process)"
    )


def _report_cold_warm(
    median: dict[str, float], memory: dict[str, int | None], volume_bytes: int
) -> None:
    print(
        f"{'open-to-volume':<26} {'cold (no cache)':>16} {'cold, 1 process':>16} "
        f"{'warm (index cache)':>19}"
    )
    rows = {
        "median s": lambda m: f"{median[m]:.3f}",
        "x faster than SimpleITK": lambda m: f"{median['simpleitk'] / median[m]:.2f}",
        "x the raw read": lambda m: f"{median[m] / median['raw']:.1f}",
        "peak / volume": lambda m: (
            f"{memory[m] / volume_bytes:.2f}" if memory.get(m) is not None else "-"
        ),
    }
    for label, cell in rows.items():
        print(f"{label:<26} {cell('ours'):>16} {cell('ours-1proc'):>16} {cell('ours-warm'):>19}")


def _start_workers() -> None:
    from app.dicom import header_pool

    start = time.perf_counter()
    header_pool.warm_up(background=False)
    workers = header_pool.worker_count()
    print(
        f"header workers: {workers} process(es), started in {time.perf_counter() - start:.2f} s "
        "(the workstation starts them at launch; not counted below)"
        if workers
        else "header workers: none (one usable core or MEDMPT_HEADER_WORKERS=0)"
    )


def _benchmark(folder: Path, repeat: int, with_memory: bool) -> int:
    from app.dicom import header_pool

    _start_workers()
    try:
        return _measure(folder, repeat, with_memory)
    finally:
        header_pool.shutdown()


def _measure(folder: Path, repeat: int, with_memory: bool) -> int:
    runners = {**RUNNERS, **_phase_runners(folder)}
    times: dict[str, list[float]] = {m: [] for m in runners}
    voxels = int(np.asarray(run_ours(folder)).size)  # warm-up; also the volume size
    _prime_cache(folder)
    for _ in range(max(repeat, 1)):
        for method, runner in runners.items():
            start = time.perf_counter()
            runner(folder)
            times[method].append(time.perf_counter() - start)
    memory = {m: _memory(m, folder) for m in METHODS} if with_memory else {}
    _report(folder, times, memory, voxels)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.memory_of:
        return _memory_child(args.memory_of, Path(args.path))
    previous = os.environ.get("MEDMPT_DATA_DIR")
    with tempfile.TemporaryDirectory(prefix="medmpt-bench-data-") as data_dir:
        os.environ["MEDMPT_DATA_DIR"] = data_dir  # the index cache of ours-warm lives here
        try:
            return _run(args)
        finally:
            if previous is None:
                del os.environ["MEDMPT_DATA_DIR"]
            else:
                os.environ["MEDMPT_DATA_DIR"] = previous


def _run(args: argparse.Namespace) -> int:
    if args.synthetic:
        with tempfile.TemporaryDirectory(prefix="medmpt-bench-load-") as tmp:
            _write_synthetic(Path(tmp))
            return _benchmark(Path(tmp), args.repeat, not args.no_memory)
    if not args.path or not Path(args.path).is_dir():
        print(
            "medmpt bench load: give a folder holding one series, or --synthetic", file=sys.stderr
        )
        return 2
    return _benchmark(Path(args.path), args.repeat, not args.no_memory)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="medmpt bench load")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
