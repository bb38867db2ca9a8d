"""`medmpt calibrate`: fit the diagnosis heads' temperatures of a model package, or check them.

Runs only the vision graph over phantom studies the model never trained on (DATA from `medmpt
phantom make`, or --generate N held-out phantoms of --seed S, default 1: seed 0 is the
evaluation's), fits one temperature per head and writes it into the package's manifest and model
card (the runtime applies it). With --check, fits nothing and prints how well the package's
current temperatures do on the given studies (e.g. the evaluation's seed 0). Must not import ui.
"""

from __future__ import annotations

import argparse
import sys
import time

from models.train.config import CALIBRATION_SEED, EVALUATION_SEED, MIN_CALIBRATION_STUDIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from models.cli_runtime import add_source_arguments

    add_source_arguments(parser, CALIBRATION_SEED, f"default {CALIBRATION_SEED}; {EVALUATION_SEED} is the evaluation's")
    parser.add_argument("--check", action="store_true",
                        help="fit nothing: print how the package's temperatures do on these studies")


def _problem(args: argparse.Namespace) -> str | None:
    from models.cli_runtime import source_problem

    problem = source_problem(args, least=MIN_CALIBRATION_STUDIES)
    if problem:
        return problem
    if args.generate is not None and args.seed == EVALUATION_SEED and not args.check:
        return (f"seed {EVALUATION_SEED} holds the evaluation's studies (`medmpt eval --generate N`); fit on another seed "
                f"(the default, {CALIBRATION_SEED}) and use --check to see the result on seed {EVALUATION_SEED}")
    return None


def run(args: argparse.Namespace) -> int:
    problem = _problem(args)
    if problem:
        print(f"medmpt calibrate: {problem}", file=sys.stderr)
        return 2
    from inference.errors import InferenceError
    from models.calibrate import check, collect, fit, format_table, write_calibration
    from models.cli_runtime import open_runtime
    from models.train.evaluate import folder_studies, generated_studies

    opened = open_runtime(args.model, args.device, "calibrate")
    if opened is None:
        return 2
    model, runtime = opened
    if args.generate is not None:
        studies = generated_studies(args.generate, args.seed, cache=args.cache)
        source, details = f"{args.generate} held-out phantoms", {"seed": args.seed}
    else:
        studies, source, details = folder_studies(args.data), f"the phantoms in {args.data.name}", {}
    t0 = time.perf_counter()
    try:
        collected = collect(runtime, studies, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (FileNotFoundError, InferenceError) as exc:
        print(f"medmpt calibrate: {exc}", file=sys.stderr)
        return 2
    if not collected:
        print("medmpt calibrate: the package has no diagnosis head these studies label", file=sys.stderr)
        return 2
    if args.check:
        print(f"the package's temperatures on {source}{_of_seed(details)} (before = uncalibrated):")
        print(format_table(check(collected, runtime.package.diagnosis_heads)))
    else:
        fitted = fit(collected)
        try:
            write_calibration(model, fitted, source, details)
        except OSError as exc:  # e.g. an installed, read-only package (it still verifies)
            print(f"medmpt calibrate: cannot write the calibration into {model}: {exc}", file=sys.stderr)
            print(format_table(fitted))
            return 2
        print(f"fitted on {source}{_of_seed(details)}; written to {model / 'manifest.json'} and its MODEL_CARD.md:")
        print(format_table(fitted))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    return 0


def _of_seed(details: dict) -> str:
    return f" of seed {details['seed']}" if "seed" in details else ""
