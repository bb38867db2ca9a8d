"""`medmpt study init|run|export|analyse`: the reader study (human-AI collaboration in reporting).

`run` starts the Qt study window, imported by name at run time (this module never imports Qt).
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path

from app.reader_study.protocol import ProtocolError, load_protocol, protocol_template


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    init = sub.add_parser("init", help="write a protocol template for the given cases and readers")
    init.add_argument("protocol", type=Path, help="the protocol file to write (.toml)")
    init.add_argument("--study-id", required=True)
    init.add_argument("--reader", action="append", required=True, help="a reader id (repeat per reader)")
    init.add_argument("--case", action="append", type=Path, required=True, help="a case folder (repeat)")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--design", choices=("crossover", "randomised"), default="crossover")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    run = sub.add_parser("run", help="open the study window for one reader and session")
    run.add_argument("protocol", type=Path)
    run.add_argument("--reader", required=True)
    run.add_argument("--session", type=int, default=1)
    run.add_argument("--model", type=Path, default=None, help="model package (default: the bundled one)")
    run.add_argument("--device", default="auto")
    for name, text in (("export", "write outcomes and edit events (CSV and Parquet)"),
                       ("analyse", "paired analysis, plots and the iMRMC file")):
        p = sub.add_parser(name, help=text)
        p.add_argument("protocol", type=Path)
        p.add_argument("--out", type=Path, default=Path("study-output"), help="output folder")
    for p in sub.choices.values():
        p.add_argument("--data-root", type=Path, default=None,
                       help="where session logs live (default: the user data folder)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "init":
            return _init(args)
        protocol = load_protocol(args.protocol)
        if args.action == "run":
            return _run_window(protocol, args)
        if args.action == "export":
            return _export(protocol, args)
        return _analyse(protocol, args)
    except (ProtocolError, ValueError, OSError) as exc:
        print(f"medmpt study {args.action}: {exc}", file=sys.stderr)
        return 2


def _init(args) -> int:
    if args.protocol.exists() and not args.force:
        print(f"medmpt study init: {args.protocol} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    missing = [str(c) for c in args.case if not c.exists()]
    if missing:
        print(f"medmpt study init: no such case folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    text = protocol_template(args.study_id, args.reader, args.case, args.seed, args.design)
    args.protocol.parent.mkdir(parents=True, exist_ok=True)
    args.protocol.write_text(text, encoding="utf-8")
    print(f"wrote {args.protocol} ({len(args.reader)} readers, {len(args.case)} cases, {args.design})")
    return 0


def _run_window(protocol, args) -> int:
    if args.reader not in protocol.readers:
        raise ValueError(f"reader {args.reader!r} is not in the protocol")
    missing = [c.case_id for c in protocol.cases if not c.path.exists()]
    if missing:
        raise ValueError(f"case folders not found for: {', '.join(missing)}")
    study_window = importlib.import_module("ui.study_window")  # Qt only on this path
    return study_window.main(protocol, args.reader, args.session, args.model, args.device, args.data_root)


def _export(protocol, args) -> int:
    from app.reader_study.outputs import collect, collect_sentences, write_table

    rows, edits = collect(protocol, args.data_root)
    if not rows:
        print("medmpt study export: no session logs found for this study", file=sys.stderr)
        return 1
    paths = write_table(rows, args.out / "outcomes") + write_table(edits, args.out / "edits")
    paths += write_table(collect_sentences(protocol, args.data_root), args.out / "sentences")
    for path in paths:
        print(f"wrote {path}")
    readers, cases = len({r["reader"] for r in rows}), len({r["case_id"] for r in rows})
    print(f"{len(rows)} reads ({readers} readers, {cases} cases), {sum(r['signed'] for r in rows)} signed, "
          f"{len(edits)} edit events")
    return 0


def _analyse(protocol, args) -> int:
    from app.reader_study.analysis import analyse
    from app.reader_study.outputs import collect

    rows, _ = collect(protocol, args.data_root)
    if not rows:
        print("medmpt study analyse: no session logs found for this study", file=sys.stderr)
        return 1
    summary = analyse(rows, protocol, args.out)
    for c in summary["comparisons"]:
        if c["n_pairs"] == 0:
            print(f"{c['outcome']}: no paired reads yet")
            continue
        print(f"{c['outcome']}: median difference (AI - unassisted) {c['median_difference']:+.1f} s, "
              f"95% CI [{c['ci_low']:+.1f}, {c['ci_high']:+.1f}], Wilcoxon p={_p(c['wilcoxon_p'])}, "
              f"n={c['n_pairs']} pairs ({c['paired_by']})")
    if "imrmc_skipped" in summary:
        print(f"iMRMC file not written: {summary['imrmc_skipped']}")
    for path in summary["files"]:
        print(f"wrote {path}")
    return 0


def _p(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3g}"
