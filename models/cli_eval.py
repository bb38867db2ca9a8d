"""`medmpt eval`: score a model package on held-out phantoms through the real runtime.

DATA is a folder made by `medmpt phantom make` (findings.json beside each DICOM series, read
through app.dicom), or use --generate N to render held-out phantoms in memory (seeds never used
in training). Prints finding P/R/F1, side+lobe accuracy, BLEU-4 / ROUGE-L / CIDEr-D, diagnosis
AUC and accuracy, and slice / in-plane pointing beside their chance levels. Must not import ui.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from models.train.config import EVALUATION_SEED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from models.cli_runtime import add_source_arguments

    add_source_arguments(parser, EVALUATION_SEED, f"default {EVALUATION_SEED}, the evaluation's")
    parser.add_argument("--cases", type=int, default=None, help="evaluate at most this many studies")
    parser.add_argument("--size", type=int, default=None, help="matrix of generated phantoms (default: training mix)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--compare", type=Path, default=None, metavar="JSON",
                        help="also compare the finding F1 with an earlier `--json` of the same studies (another "
                             "model): the paired difference with its bootstrap interval")
    parser.add_argument("--card", action="store_true",
                        help="also write the table (with the command) as the package's MODEL_CARD.md 'Evaluation' section")
    parser.add_argument("--card-notes", type=Path, default=None, metavar="MD",
                        help="with --card: markdown to put under the table (the reading of the figures)")


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval_note(interval, what: str = "F1") -> str:
    if not interval:
        return ""
    return f"; {what} 95 % interval {100 * interval[0]:.1f}-{100 * interval[1]:.1f} % (studies resampled)"


def compare_findings(figures: dict, baseline: dict, name: str) -> str:
    """The lines saying how this evaluation's finding F1 (and exact F1, when both have it) differs
    from `baseline`'s (a `--json` of the same studies); ValueError when the two did not score the
    same studies."""
    from models.train.metrics import f1_difference

    ours = figures.get("study_findings") or {}
    theirs = (baseline.get("study_findings") if isinstance(baseline, dict) else None) or {}
    if not theirs:
        raise ValueError(f"{name} has no per-study findings (written by an older `medmpt eval --json`)")
    if set(ours) != set(theirs):
        raise ValueError(f"{name} scored other studies ({len(set(ours) ^ set(theirs))} differ): "
                         "compare evaluations of the same studies")
    names = sorted(ours)
    lines = []
    for label, key in (("finding F1", "study_findings"), ("exact finding F1", "study_exact_findings")):
        mine, base = figures.get(key) or {}, baseline.get(key) or {}
        if set(mine) != set(names) or set(base) != set(names):
            continue  # an older --json without exact counts: the type-level line alone
        diff, low, high = f1_difference([mine[n] for n in names], [base[n] for n in names])
        verdict = "better" if low > 0 else "worse" if high < 0 else "no clear difference"
        lines.append(f"{label} against {name}: {100 * diff:+.1f} points (paired bootstrap over the {len(names)} "
                     f"studies, 95 % interval {100 * low:+.1f} to {100 * high:+.1f}): {verdict}")
    return "\n".join(lines)


def format_figures(r: dict, model: str, source: str) -> str:
    """The printed evaluation table (also used in MODEL_CARD.md)."""
    from models.train.metrics import IMPLEMENTATION

    rows = [
        ("studies", str(r["studies"]), ""),
        ("finding precision / recall / F1", f"{_pct(r['finding_precision'])} / {_pct(r['finding_recall'])} / "
         f"{_pct(r['finding_f1'])}", "type-level match" + _interval_note(r.get("finding_f1_ci"))),
        ("exact finding F1", _pct(r["exact_finding_f1"]), "type, side, lobe, subtype, size class, grade all right"
         + _interval_note(r.get("exact_finding_f1_ci"), "exact F1")),
        ("side + lobe accuracy", _pct(r["side_lobe_accuracy"]), "matched nodules and effusions"),
        ("BLEU-4 / ROUGE-L / CIDEr-D", f"{_num(r['bleu4'])} / {_num(r['rouge_l'])} / {_num(r['cider_d'])}",
         IMPLEMENTATION),
        ("severity accuracy / macro AUC", f"{_pct(r['severity_accuracy'])} / {_num(r['severity_macro_auc'])}",
         "CT-0..CT-3"),
        ("nodule AUC / accuracy / ECE", f"{_num(r['nodule_auc'])} / {_pct(r['nodule_accuracy'])} / "
         f"{_num(r.get('nodule_ece'))}", "ECE: calibration error of the shown probability (10 bins); "
         f"AUC for nodules of 10 mm or more against none: {_num(r.get('nodule_auc_10mm'))}"),
        ("effusion AUC / accuracy / ECE", f"{_num(r['effusion_auc'])} / {_pct(r['effusion_accuracy'])} / "
         f"{_num(r.get('effusion_ece'))}", ""),
        ("slice pointing (chance)", f"{_pct(r['slice_pointing'])} ({_pct(r['slice_pointing_chance'])})",
         f"{r['slice_pointing_sentences']} positive sentences, +/- one sampled slice"),
        ("in-plane pointing (chance)", f"{_pct(r['inplane_pointing'])} ({_pct(r['inplane_pointing_chance'])})",
         f"{r['inplane_pointing_sentences']} nodule/effusion sentences, box + one patch"),
        ("seconds per study", _num(r["seconds_per_study"], 2), "runtime draft, CPU"),
    ]
    by_type = ", ".join(f"{k} {_pct(v[0])} (chance {_pct(v[1])}, n={v[2]})"
                        for k, v in r["slice_pointing_by_type"].items())
    lines = [f"model: {model}", f"data: {source}", "", "| metric | value | note |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(f"| slice pointing by type | {by_type or 'n/a'} | |")
    for kind, classes in r.get("recall_by_class", {}).items():
        what = "size" if kind == "nodule" else "grade"
        lines.append(f"| {kind}: found by {what} | " + ", ".join(f"{k} {a}/{n}" for k, (a, n) in classes.items())
                     + " | true findings matched by a reported one |")
    large = r.get("large_nodules_by_subtype")
    if large:
        lines.append("| nodules of 10 mm or more: found by subtype | "
                     + ", ".join(f"{k} {a}/{n}" for k, (a, n) in large.items()) + " | true findings matched by a reported one |")
    checks = r.get("checks")
    if checks:
        right = ", ".join(f"{k} {a}/{n}" for k, (a, n) in checks["head_checks"].items()) or "none"
        lines.append(f"| draft checks: drafts flagged / self-contradictions / drafts with an unfinished sentence | "
                     f"{checks['drafts_flagged']} / {checks['self_contradictions']} / "
                     f"{checks.get('unfinished_drafts', 0)} | head checks where the head was right: {right} |")
    for kind, v in r.get("finding_by_type", {}).items():
        lines.append(f"| {kind}: precision / recall / F1 | {_pct(v['precision'])} / {_pct(v['recall'])} / "
                     f"{_pct(v['f1'])} | {v['true']} true, {v['reported']} reported |")
    return "\n".join(lines)


def _problem(args: argparse.Namespace) -> str | None:
    from models.cli_runtime import source_problem

    if args.card_notes is not None and not (args.card and args.card_notes.is_file()):
        return "--card-notes needs --card and an existing markdown file"
    if args.compare is not None and not args.compare.is_file():
        return f"--compare: {args.compare} is not a file"
    return source_problem(args)


def run(args: argparse.Namespace) -> int:
    problem = _problem(args)
    if problem:
        print(f"medmpt eval: {problem}", file=sys.stderr)
        return 2
    from inference.errors import InferenceError
    from models.cli_runtime import open_runtime
    from models.train.evaluate import evaluate, folder_studies, generated_studies, held_out_seed

    opened = open_runtime(args.model, args.device, "eval")
    if opened is None:
        return 2
    model, runtime = opened
    if args.generate is not None:
        count = min(args.generate, args.cases or args.generate)
        studies, source = generated_studies(count, args.seed, args.size, args.cache), (
            f"{count} held-out phantoms of seed {args.seed} (phantom seeds {held_out_seed(args.seed, 0)}.."
            f"{held_out_seed(args.seed, count - 1)}, never used in training), rendered like the training studies")
    else:
        studies, source = folder_studies(args.data, args.cases), str(args.data)
    t0 = time.perf_counter()
    try:
        figures = evaluate(runtime, studies, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (FileNotFoundError, InferenceError) as exc:
        print(f"medmpt eval: {exc}", file=sys.stderr)
        return 2
    table = format_figures(figures, f"{runtime.model_info.name} {runtime.model_info.version}", source)
    print(table)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    status = 0
    if args.compare:
        try:
            try:
                baseline = json.loads(args.compare.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{args.compare.name} is not valid JSON ({exc})") from exc
            print(compare_findings(figures, baseline, args.compare.name))
        except (ValueError, OSError) as exc:
            print(f"medmpt eval: --compare: {exc}", file=sys.stderr)
            status = 2  # the figures above and the --json still stand
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if args.card:
        from models.train.bundle import set_model_card_section

        notes = args.card_notes.read_text(encoding="utf-8") if args.card_notes else ""
        set_model_card_section(model, "Evaluation", f"Command: `{_command(sys.argv[2:])}`\n\n{table}\n\n{notes}")
        print(f"wrote the Evaluation section of {model / 'MODEL_CARD.md'}")
    return status


def _command(argv: list[str]) -> str:
    """The evaluation's command line as the card records it: without the card options, the
    local cache folder and the outputs (--json, --compare), which do not change the figures."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--card-notes", "--cache", "--json", "--compare"):
            skip = True
        elif arg != "--card" and not arg.startswith(("--card-notes=", "--cache=", "--json=", "--compare=")):
            kept.append(arg)
    return " ".join(["medmpt eval", *kept])
