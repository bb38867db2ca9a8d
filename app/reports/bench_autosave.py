"""`medmpt bench autosave`: how long one autosave and one reopen take, FULL vs NORMAL sync side by side.

Prints figures and ratios measured in one run; asserts nothing. Must not import Qt.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from app.reports.session import ReportSession
from app.reports.store import ReportStore

STUDY, SERIES = "2.25.1001", "2.25.1002"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--saves", type=int, default=200, help="autosaves per mode (default 200)")
    parser.add_argument("--chars", type=int, default=2000, help="characters of report text (default 2000)")
    parser.add_argument("--dir", type=Path, help="folder for the scratch databases (default: a temp folder)")


def _measure(path: Path, synchronous: str, saves: int, chars: int) -> tuple[list[float], float]:
    with ReportStore(path) as store:
        store._conn.execute(f"PRAGMA synchronous = {synchronous}")
        session = ReportSession.open(store, STUDY, SERIES, "bench")
        times = []
        for n in range(saves):
            text = {"FINDINGS": (f"edit {n} " + "lung " * chars)[:chars], "IMPRESSION": f"impression {n}"}
            start = time.perf_counter()
            session.save_draft(text, session.version)
            times.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    with ReportStore(path) as store:
        ReportSession.open(store, STUDY, SERIES, "bench")
    return times, (time.perf_counter() - start) * 1000


def run(args: argparse.Namespace) -> int:
    if args.saves < 1 or args.chars < 1:
        print("medmpt bench autosave: --saves and --chars must be at least 1")
        return 2
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        print(f"autosave: {args.saves} saves of {args.chars} characters per mode, store under {folder}")
        print(f"{'mode':<34}{'median ms':>10}{'p95 ms':>9}{'saves/s':>9}{'reopen ms':>11}")
        medians = {}
        for mode in ("FULL", "NORMAL"):
            times, reopen = _measure(Path(folder) / f"{mode}.sqlite3", mode, args.saves, args.chars)
            median = statistics.median(times)
            p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
            medians[mode] = median
            label = f"WAL + synchronous={mode}" + (" (used)" if mode == "FULL" else "")
            print(f"{label:<34}{median:>10.2f}{p95:>9.2f}{1000 / statistics.mean(times):>9.0f}{reopen:>11.2f}")
        print(f"ratio FULL/NORMAL (median): {medians['FULL'] / max(medians['NORMAL'], 1e-9):.2f}x")
    return 0
