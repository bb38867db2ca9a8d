"""`medmpt convert-checkpoint CKPT --vocab VOCAB --out DIR`: official checkpoint -> model package.

Must not import app, ui or inference.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

from models.convert import Conversion, ConversionError, convert_state_dict, load_checkpoint
from models.export.package import PackageInfo, sha256_file, write_package
from models.medmpt.config import CONFIGS, RELEVANCE_METHODS, get_config
from models.medmpt.tokenizer import from_vocab_file

LICENCE = ("MedMPT pretrained weights (Ma et al., Nat. Biomed. Eng. 2025): released by the "
           "authors on request for non-commercial research only; check your agreement.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="official checkpoint (.pth) with key 'model'")
    parser.add_argument("--vocab", type=Path, required=True, help="BERT vocab.txt of the checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="package folder to write")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="paper", help="model sizes (default paper)")
    parser.add_argument("--patch-relevance", choices=RELEVANCE_METHODS, default="rollout",
                        help="the in-plane heatmap: attention rollout (default) or the last block's CLS "
                             "attention, whose vision graph runs fused attention (faster on a GPU)")
    parser.add_argument("--name", default="medmpt-official", help="package name")
    parser.add_argument("--version", default="1.0.0", help="package version")
    parser.add_argument("--force", action="store_true", help="replace a package already in --out")
    parser.add_argument("--no-fp16", action="store_true", help="skip the fp16 graphs")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow a checkpoint that holds Python objects (runs pickle code)")


def run(args: argparse.Namespace) -> int:
    if args.out.is_dir() and any(args.out.iterdir()) and not args.force:
        print(f"medmpt convert-checkpoint: error: {args.out} is not empty; choose another folder "
              "or pass --force to replace the package in it", file=sys.stderr)
        return 2
    try:
        state = load_checkpoint(args.checkpoint, trust_pickle=args.trust_pickle)
        conversion = convert_state_dict(state, get_config(args.config, patch_relevance=args.patch_relevance))
        tokenizer = from_vocab_file(args.vocab, lowercase=True)
        if tokenizer.get_vocab_size() != conversion.model.config.vocab_size:
            raise ConversionError(f"{args.vocab.name} has {tokenizer.get_vocab_size()} tokens but the "
                                  f"checkpoint's vocabulary is {conversion.model.config.vocab_size}")
    except (ConversionError, ValueError, FileNotFoundError) as exc:
        print(f"medmpt convert-checkpoint: error: {exc}", file=sys.stderr)
        return 2
    _print_summary(args.checkpoint, conversion)
    info = package_info(args, sha256_file(args.checkpoint))
    try:
        out = write_package(conversion.model, tokenizer, args.out, info, fp16=not args.no_fp16,
                            overwrite=args.force)
    except FileExistsError as exc:
        print(f"medmpt convert-checkpoint: error: {exc}", file=sys.stderr)
        return 2
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    print(f"wrote package {out} ({files})")
    return 0


def _print_summary(path: Path, conversion: Conversion) -> None:
    config = conversion.model.config
    ignored = ", ".join(conversion.ignored) or "nothing"
    print(f"loaded {conversion.used} report tensors from {path.name} (ignored: {ignored})")
    print(f"model: {config.config_name}, {conversion.model.report_parameter_count():,} parameters, "
          f"vocabulary {config.vocab_size}")


def package_info(args: argparse.Namespace, checkpoint_sha: str) -> PackageInfo:
    today = _dt.date.today().isoformat()
    return PackageInfo(
        name=args.name, version=args.version,
        display_name="MedMPT (converted official weights)",
        label="research only, not for clinical use", clinical_use=False,
        intended_use="Research use under the weights' licence. Not a medical device.",
        licence=LICENCE,
        provenance=(f"medmpt convert-checkpoint from {args.checkpoint.name} "
                    f"(sha256 {checkpoint_sha}) and {args.vocab.name} on {today}"),
    )
