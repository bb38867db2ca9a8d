"""Test helpers: a seeded random-weight tiny MedMPT package, built in seconds for other tests.

`make_random_package` is called by the inference tests (session fixture); keep its signature.
Must not import app, ui or inference.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from tokenizers import Tokenizer

from models.export.package import PackageInfo, write_package
from models.medmpt.config import get_config
from models.medmpt.model import MedMPTReportModel, build_model
from models.medmpt.tokenizer import BUILTIN_CORPUS, train_wordpiece

RANDOM_LABEL = "random weights, for tests only"


def random_model_and_tokenizer(config: str = "tiny", seed: int = 0, **overrides) -> tuple[MedMPTReportModel, Tokenizer]:
    """The seeded random-weight model and built-in-corpus tokenizer of `make_random_package`
    (`overrides`: configuration fields replaced, e.g. patch_stem="conv")."""
    tokenizer = train_wordpiece(BUILTIN_CORPUS, vocab_size=2000)
    model = build_model(get_config(config, vocab_size=tokenizer.get_vocab_size(), **overrides), seed=seed)
    return model, tokenizer


def make_random_package(out_dir: Path, config: str = "tiny", seed: int = 0, fp16: bool = True,
                        **overrides) -> Path:
    """Build a seeded random-weight model and tokenizer and export a full package (fp32 + fp16).

    `out_dir` may be new, empty or an earlier package (replaced). Takes a few seconds.
    """
    model, tokenizer = random_model_and_tokenizer(config, seed, **overrides)
    today = _dt.date.today().isoformat()
    info = PackageInfo(
        name=f"medmpt-{config}-random", version="0.0.0",
        display_name=f"MedMPT {config} (random weights, for tests only)",
        label=RANDOM_LABEL, clinical_use=False,
        intended_use="Software testing only. Random weights: outputs carry no meaning.",
        licence="Proprietary (test artefact)",
        provenance=f"models.testing.make_random_package(config={config!r}, seed={seed}) on {today}; "
                   "tokenizer trained on the built-in English report corpus",
    )
    return write_package(model, tokenizer, Path(out_dir), info, fp16=fp16, overwrite=True)
