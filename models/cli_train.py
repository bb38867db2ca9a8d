"""`medmpt train`: train the tiny MedMPT on synthetic phantoms and write a model package.

Renders `--cases` phantoms (seeded), preprocesses them with the runtime's preprocessing, caches
them as uint8, trains (report LM + diagnosis heads + explanation losses), and exports the
package to --out. Needs the 'train' extra (torch). Must not import ui.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from models.medmpt.config import INPUT_CHANNELS
from models.train.config import (
    CALIBRATION_SEED,
    MIN_CALIBRATION_STUDIES,
    PACKAGE_NAME,
    PASTE_SHARE,
    TrainSettings,
    phantom_config,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainSettings()
    parser.add_argument("--out", type=Path, required=True, help="package folder to write (new, empty, or a package)")
    parser.add_argument("--cases", type=int, default=defaults.cases, help="phantom studies to train on")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of phantoms, weights and order (0..999)")
    parser.add_argument("--epochs", type=float, default=defaults.epochs, help="passes over the studies")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="wall-time budget; the LR schedule then follows elapsed time")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the study cache and checkpoints (default: in the temp folder)")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering phantoms")
    parser.add_argument("--stream", action="store_true",
                        help="start training while phantoms are still rendering (faster, not bit-reproducible)")
    parser.add_argument("--pretrain-steps", type=int, default=0,
                        help="stage zero: steps training the slice encoder alone on single slices with dense "
                             "phantom ground truth (models/train/slice_pretrain.py)")
    parser.add_argument("--patch-size", type=int, choices=(16, 32), default=defaults.patch_size,
                        help="slice encoder patch (16: a 14 x 14 grid as the paper; 32: 7 x 7, four times cheaper)")
    parser.add_argument("--vision-width", type=int, default=defaults.vision_width,
                        help="slice encoder width (a multiple of 32; 64 by default: CPU training time)")
    parser.add_argument("--patch-stem", choices=("linear", "conv"), default=defaults.patch_stem,
                        help="slice encoder patch embedding: linear (the paper's) or conv (a convolutional "
                             "stem down to the same grid; finds small objects better)")
    parser.add_argument("--input-channels", choices=INPUT_CHANNELS, default=defaults.input_channels,
                        help="what the three input channels show: windows (lung, wide, mediastinal: the "
                             "paper's), lung-neighbours (the wide window replaced by the lung window of the "
                             "neighbouring sampled slices, their maximum) or neighbours-ground-glass (as "
                             "lung-neighbours, with a ground-glass window, -1000 to -400 HU, in place of the "
                             "mediastinal one)")
    parser.add_argument("--paste-share", type=float, default=PASTE_SHARE,
                        help="stage zero: share of slices given a pasted synthetic nodule (0 = none)")
    parser.add_argument("--slice-encoder", type=Path, default=None, metavar="PACKAGE",
                        help="take the trained slice encoder of this model package (verified) instead of "
                             "training one; with --pretrain-steps, stage zero goes on from it; the encoder "
                             "then stays frozen")
    parser.add_argument("--pretrain-minutes", type=float, default=None, help="wall-time budget of stage zero")
    parser.add_argument("--pretrain-lr", type=float, default=None,
                        help="stage zero's peak learning rate (default 0.001)")
    parser.add_argument("--whole-studies", type=int, default=0, metavar="N",
                        help="stage zero: N whole studies in each batch of 64 slices, with a study-level "
                             "nodule loss on the largest slice nodule score (0 = none)")
    parser.add_argument("--finetune-steps", type=int, default=300,
                        help="second stage: steps on cached slice embeddings with the slice encoder frozen")
    parser.add_argument("--slice-label-weight", type=float, default=0.0, metavar="W",
                        help="second stage: weight of a training-only loss teaching each fused slice token its "
                             "slice's phantom ground truth (nodule and side, opacity, effusion side, ...); 0 = none")
    parser.add_argument("--finetune-dropout", type=float, default=None, metavar="P",
                        help="second stage: dropout probability of the slice fusion and decoder while training "
                             "(default: the configuration's, 0 for the phantom model)")
    parser.add_argument("--calibrate", type=int, default=300, metavar="N",
                        help=f"after export, fit the diagnosis heads' temperatures on N held-out phantoms of seed {CALIBRATION_SEED} "
                             "(`medmpt calibrate`; 0 = leave the package uncalibrated)")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch threads")
    parser.add_argument("--no-export", action="store_true", help="train only; export later with --export-only")
    parser.add_argument("--export-only", action="store_true", help="export the package from the checkpoint in --work")


def _settings(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings(cases=args.cases, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, threads=args.threads, max_minutes=args.max_minutes,
                         patch_size=args.patch_size, vision_width=args.vision_width,
                         patch_stem=args.patch_stem, input_channels=args.input_channels)


def _check(args: argparse.Namespace) -> str | None:
    if args.cases < args.batch_size:
        return f"--cases ({args.cases}) must be at least the batch size ({args.batch_size})"
    if not 0 <= args.seed < 1000:
        return f"--seed must be in 0..999, got {args.seed}"
    if args.epochs < 0 or args.batch_size < 1 or args.workers < 1 or args.pretrain_steps < 0:
        return "--batch-size and --workers must be positive, --epochs and --pretrain-steps not negative"
    try:
        phantom_config(1, args.patch_size, args.vision_width, args.patch_stem)  # the one place that knows the valid widths
    except ValueError as exc:
        return f"--vision-width: {exc}"
    if args.finetune_dropout is not None and not 0.0 <= args.finetune_dropout < 1.0:
        return "--finetune-dropout must be at least 0 and below 1"
    if args.slice_label_weight < 0:
        return "--slice-label-weight must not be negative"
    if not 0.0 <= args.paste_share <= 1.0:
        return "--paste-share must be between 0 and 1"
    if not 0 <= args.whole_studies <= 2:
        return "--whole-studies must be 0, 1 or 2 (32 slices each, in a batch of 64)"
    if args.pretrain_lr is not None and not args.pretrain_lr > 0:
        return "--pretrain-lr must be positive"
    if args.slice_encoder is not None:
        if args.epochs:
            return "--slice-encoder takes a trained slice encoder: do not give --epochs"
        if args.finetune_steps < 1:
            return "--slice-encoder needs --finetune-steps to train the report side on it"
    elif args.epochs == 0 and args.pretrain_steps == 0 and not args.export_only:
        return "nothing would train the slice encoder: give --epochs, --pretrain-steps or --slice-encoder"
    if args.calibrate != 0 and args.calibrate < MIN_CALIBRATION_STUDIES:
        return f"--calibrate needs at least {MIN_CALIBRATION_STUDIES} phantoms (or 0 to skip calibration)"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"medmpt train: {problem}", file=sys.stderr)
        return 2
    from models.train.loop import Trainer, fill_in_background

    work = args.work or Path(tempfile.gettempdir()) / f"medmpt-train-s{args.seed}-n{args.cases}"
    command = "medmpt train " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "medmpt train"
    if not args.export_only:
        trainer = Trainer(_settings(args), work, log=lambda m: print(m, flush=True))
        trainer.command = command
        if args.slice_encoder is not None and (trainer.step or (trainer.pretrain and not trainer.encoder_source)):
            print(f"medmpt train: --slice-encoder: {work} already holds a slice encoder trained by this "
                  "command; choose another --work folder", file=sys.stderr)
            return 2
        if args.slice_encoder is not None and not trainer.encoder_source and not trainer.finetune:
            from inference.errors import PackageError
            from models.train.encoder_from_package import load_slice_encoder

            try:
                trainer.encoder_source = load_slice_encoder(trainer.model, args.slice_encoder)
            except (PackageError, ValueError) as exc:
                print(f"medmpt train: --slice-encoder: {exc}", file=sys.stderr)
                return 2
            print(f"slice encoder taken from {trainer.encoder_source['package']} "
                  f"{trainer.encoder_source['version']} ({args.slice_encoder})", flush=True)
            trainer.save()
        t0 = time.perf_counter()
        if args.stream:
            filler = fill_in_background(trainer.cache, args.workers)
        else:
            trainer.cache.fill(args.workers)
        if args.pretrain_steps > 0 and not trainer.pretrain and trainer.step == 0:
            from models.train.slice_pretrain import PretrainSettings, pretrain_slices

            pretrain_slices(trainer, PretrainSettings(steps=args.pretrain_steps, max_minutes=args.pretrain_minutes,
                                                     paste_share=args.paste_share, whole_studies=args.whole_studies,
                                                     probe_steps=200 if trainer.encoder_source else 0,
                                                     **({"lr": args.pretrain_lr} if args.pretrain_lr else {})),
                            log=lambda m: print(m, flush=True))
            trainer.save()
        trainer.run()
        if args.stream:
            filler.terminate()
            filler.join()
        if args.finetune_steps > 0 and not trainer.finetune:
            from models.train.finetune import finetune

            finetune(trainer, args.finetune_steps, slice_label_weight=args.slice_label_weight,
                     dropout=args.finetune_dropout, log=lambda m: print(m, flush=True))
            trainer.save()
        print(f"trained {trainer.step} steps in {time.perf_counter() - t0:.0f} s; checkpoint {trainer.checkpoint_path}")
    if args.no_export:
        return 0
    from models.train.bundle import export_checkpoint

    try:
        out = export_checkpoint(work / "checkpoint.pt", args.out, command=command, name=PACKAGE_NAME)
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"medmpt train: {exc}", file=sys.stderr)
        return 2
    print(f"package written to {out}")
    if args.calibrate > 0:
        from models.calibrate import calibrate_on_phantoms, format_table

        fitted = calibrate_on_phantoms(out, args.calibrate, CALIBRATION_SEED, cache=work / "calibration",
                                       log=lambda m: print(m, flush=True))
        print(f"calibrated on {args.calibrate} held-out phantoms of seed {CALIBRATION_SEED}:\n{format_table(fitted)}")
    return 0
