"""`medmpt phantom`: synthetic chest-CT phantoms (DICOM + ground truth + report) and report corpora.

  medmpt phantom make OUT --cases N --seed S [--size 512] [--min-slices 40] [--max-slices 400]
                          [--workers 2] [--transfer-syntax mix|explicit|implicit|rle|jpeg-ls|jpeg2000]
  medmpt phantom corpus OUT.txt --reports N --seed S
  medmpt phantom bench [--size 512] [--slices 100] [--cases 1] [--seed 0]

Tooling (models/): must not be imported by app/, ui/ or inference/.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SIZES = (64, 96, 128, 192, 224, 256, 384, 512)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    make = sub.add_parser("make", help="write phantom studies: OUT/case-0001/{IM0001.dcm.., findings.json, report.txt}")
    make.add_argument("out", type=Path, help="output folder (created; existing case folders are overwritten)")
    make.add_argument("--cases", type=int, default=1, help="number of studies (default 1)")
    make.add_argument("--seed", type=int, default=0, help="seed of the whole set (default 0)")
    make.add_argument("--size", type=int, default=None, help=f"matrix size, one of {SIZES} (default: mixed 512/384/256)")
    make.add_argument("--min-slices", type=int, default=40)
    make.add_argument("--max-slices", type=int, default=400)
    make.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    make.add_argument("--transfer-syntax", default="mix",
                      choices=["mix", "explicit", "implicit", "rle", "jpeg-ls", "jpeg2000"])
    bench = sub.add_parser("bench", help="time rendering and DICOM writing of one study per seed")
    bench.add_argument("--size", type=int, default=512, choices=SIZES)
    bench.add_argument("--slices", type=int, default=100)
    bench.add_argument("--cases", type=int, default=1)
    bench.add_argument("--seed", type=int, default=0)
    corpus = sub.add_parser("corpus", help="write N phantom report texts, one per line (tokenizer training)")
    corpus.add_argument("out", type=Path)
    corpus.add_argument("--reports", type=int, default=10000)
    corpus.add_argument("--seed", type=int, default=0)


def case_seed(seed: int, index: int) -> int:
    """Seed of case `index` (0-based) in a set made with `seed`."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _check_make(args: argparse.Namespace) -> str | None:
    if args.cases < 1:
        return f"--cases must be at least 1, got {args.cases}"
    if args.seed < 0:
        return f"--seed must be >= 0, got {args.seed}"
    if args.size is not None and args.size not in SIZES:
        return f"--size must be one of {SIZES}, got {args.size}"
    if not 1 <= args.min_slices <= args.max_slices <= 2000:
        return f"need 1 <= --min-slices <= --max-slices <= 2000, got {args.min_slices}, {args.max_slices}"
    if args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    if args.out.exists() and not args.out.is_dir():
        return f"{args.out} exists and is not a folder"
    return None


def make_one(out: str, index: int, seed: int, size: int | None, limits: tuple[int, int],
             ts_name: str) -> str:
    """Render and write case `index`; returns its summary line (runs in a worker process)."""
    from models.phantoms.case import make_case
    from models.phantoms.dicom_out import (
        TRANSFER_SYNTAX_NAMES,
        available_transfer_syntaxes,
        write_study,
    )

    start = time.perf_counter()
    s = case_seed(seed, index)
    case = make_case(s, size=size, slice_limits=limits)
    available = available_transfer_syntaxes()
    ts = available[index % len(available)] if ts_name == "mix" else TRANSFER_SYNTAX_NAMES[ts_name]
    signed = bool((index // len(available)) % 2) if ts_name == "mix" else False
    name = f"case-{index + 1:04d}"
    write_study(case, Path(out) / name, number=index + 1, transfer_syntax=ts, signed=signed)
    g = case.geometry
    kinds = ",".join(sorted({f.type for f in case.findings})) or "normal"
    return (f"{name}  {g.columns}x{g.rows}x{g.num_slices}  {g.slice_thickness:g} mm  "
            f"{ts.name}  {kinds}  {time.perf_counter() - start:.1f} s")


def _make(args: argparse.Namespace) -> int:
    problem = _check_make(args)
    if problem:
        print(f"medmpt phantom make: {problem}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(str(args.out), i, args.seed, args.size, (args.min_slices, args.max_slices),
             args.transfer_syntax) for i in range(args.cases)]
    if args.workers == 1:
        for job in jobs:
            print(make_one(*job), flush=True)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
            try:
                for line in pool.map(make_one, *zip(*jobs, strict=True)):
                    print(line, flush=True)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    total = time.perf_counter() - start
    print(f"wrote {args.cases} case(s) to {args.out} in {total:.1f} s ({total / args.cases:.1f} s per case)")
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from models.phantoms.corpus import report_corpus

    if args.reports < 1:
        print(f"medmpt phantom corpus: --reports must be at least 1, got {args.reports}", file=sys.stderr)
        return 2
    if args.out.is_dir():
        print(f"medmpt phantom corpus: {args.out} is a folder; give a file name", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    texts = report_corpus(args.reports, args.seed)
    args.out.write_text("\n".join(texts) + "\n")
    print(f"wrote {len(texts)} reports to {args.out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import tempfile

    from models.phantoms.case import make_case
    from models.phantoms.dicom_out import available_transfer_syntaxes, write_study

    if args.cases < 1 or args.seed < 0 or not 1 <= args.slices <= 2000:
        print("medmpt phantom bench: need --cases >= 1, --seed >= 0 and 1 <= --slices <= 2000",
              file=sys.stderr)
        return 2
    make_case(args.seed, size=64, num_slices=4)  # warm imports
    wall = cpu = 0.0
    for i in range(args.cases):
        w0, c0 = time.perf_counter(), time.process_time()
        case = make_case(case_seed(args.seed, i), size=args.size, num_slices=args.slices)
        wall, cpu = wall + time.perf_counter() - w0, cpu + time.process_time() - c0
    shape = f"{args.size}x{args.size}x{args.slices}"
    print(f"make_case {shape}: {wall / args.cases:.2f} s per study wall, {cpu / args.cases:.2f} s CPU "
          f"({1000 * cpu / args.cases / args.slices:.1f} ms CPU per slice)")
    with tempfile.TemporaryDirectory() as tmp:
        for uid in available_transfer_syntaxes():
            w0, c0 = time.perf_counter(), time.process_time()
            write_study(case, Path(tmp) / uid, number=1, transfer_syntax=uid)
            print(f"write {shape} {uid.name}: {time.perf_counter() - w0:.2f} s wall, "
                  f"{time.process_time() - c0:.2f} s CPU")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "make":
        return _make(args)
    if args.action == "bench":
        return _bench(args)
    if args.action == "corpus":
        return _corpus(args)
    print("medmpt phantom: choose an action: make, corpus or bench (see --help)", file=sys.stderr)
    return 2
