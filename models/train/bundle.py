"""Bundle a trained phantom checkpoint as a model package and keep its model card current.

Must not import app or ui.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer

from models.export.package import PackageInfo, sha256_file, write_package
from models.medmpt.config import DiagnosisHead, MedMPTConfig
from models.medmpt.model import MedMPTReportModel
from models.train.config import PACKAGE_NAME

LABEL = "synthetic, not for clinical use"
INTENDED_USE = ("Trained on synthetic phantoms, not for clinical use. For demonstrating and "
                "testing the workstation only; its reports describe phantoms, not patients.")
LICENCE = "Proprietary (weights trained by the MedMPT workstation project on its own synthetic data)"


def load_checkpoint(path: Path) -> tuple[MedMPTReportModel, Tokenizer, dict]:
    """(model in eval mode, tokenizer, the raw checkpoint dict) of a training checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training checkpoint at {path}")
    state = torch.load(path, weights_only=False, map_location="cpu")
    config = dict(state["config"])
    config["heads"] = tuple(DiagnosisHead(h["name"], tuple(h["classes"])) for h in config["heads"])
    model = MedMPTReportModel(MedMPTConfig(**config))
    model.load_state_dict(state["model"])
    return model.eval(), Tokenizer.from_str(state["tokenizer"]), state


def provenance(state: dict, command: str) -> str:
    s = state["settings"]
    seconds = state["history"][-1]["seconds"] if state.get("history") else 0.0
    first = s["seed"] * 1_000_000
    rendered = (state.get("finetune") or {}).get("studies") or (state["history"][-1].get("studies")
                                                                if state.get("history") else s["cases"])
    return (f"Trained from random initialisation by models/cli_train.py on {rendered} synthetic "
            f"chest-CT phantoms (models.phantoms.make_case, from seeds {first}..{first + s['cases'] - 1}), "
            f"training seed {s['seed']}, {state['step']} steps of batch {s['batch_size']}, "
            f"{seconds / 60:.0f} min wall time on 2 CPU threads"
            + (f" + {state['finetune']['steps']} second-stage steps" if state.get("finetune") else "")
            + f"; command: {command}; "
            f"exported {_dt.date.today().isoformat()}")


def export_checkpoint(checkpoint: Path, out: Path, command: str, name: str = PACKAGE_NAME) -> Path:
    """Write the package of a checkpoint to `out` (replacing an earlier package there)."""
    model, tokenizer, state = load_checkpoint(checkpoint)
    command = state.get("command") or command
    info = PackageInfo(
        name=name, version="0.1.0", display_name="MedMPT tiny (synthetic phantoms)", label=LABEL,
        intended_use=INTENDED_USE, licence=LICENCE, provenance=provenance(state, command),
        clinical_use=False, max_length=int(state["settings"]["max_tokens"]))
    package = write_package(model, tokenizer, Path(out), info, fp16=True, overwrite=True)
    set_model_card_section(package, "Training", training_markdown(state, command))
    return package


def training_markdown(state: dict, command: str) -> str:
    """The model card's training section: command, seed, data recipe, losses, wall time."""
    s, history = state["settings"], state.get("history", [])
    last = history[-20:]
    mean = {k: sum(h[k] for h in last) / len(last) for k in ("text", "diagnosis", "slices", "patches")} if last else {}
    seen = history[-1].get("studies", s["cases"]) if history else 0
    first = s["seed"] * 1_000_000
    return "\n".join([
        f"- Command: `{command}`",
        f"- Seed: {s['seed']} (torch, numpy and python seeded; deterministic torch kernels; "
        f"{s['threads']} threads)",
        f"- Data: synthetic chest-CT phantoms `models.phantoms.case.make_case(seed, size, num_slices=32)`, "
        f"seeds {first}..{first + s['cases'] - 1}, matrix 128/128/160 drawn per seed; each preprocessed "
        "once by `inference.preprocess.preprocess` with the package's own spec (5 mm nearest z "
        "resampling, the MedMPT 32-slice rule, 224 x 224 antialiased bilinear, three HU windows) and "
        "cached as uint8 grey levels (bit-exact with the runtime input). "
        f"{seen} of the {s['cases']} planned studies had been rendered when training ended.",
        "- Reports: the phantom report writer's text, WordPiece tokenizer learnt from 5,000 phantom "
        "reports (case kept, hyphenated words whole), at most 120 tokens.",
        "- Losses: teacher-forced report cross-entropy + cross-entropy of the COVID severity (CT-0..CT-3), "
        f"nodule and effusion heads (weight {s['diag_weight']}) + two explanation losses on the synthetic "
        f"ground truth: the decoder cross-attention (layers and heads averaged, as the runtime reads it) "
        f"of each finding sentence's tokens is pushed onto the sampled slices of that finding "
        f"(-log of the attention mass there, weight {s['slice_weight']}), and the slice encoder's CLS "
        f"attention rollout on slices holding a nodule or effusion onto the finding's box "
        f"(weight {s['patch_weight']}).",
        f"- Optimiser: AdamW lr {s['lr']}, weight decay {s['weight_decay']}, {s['warmup_steps']} warm-up "
        f"steps then cosine to 5 % (following the larger of step and wall-time progress), batch "
        f"{s['batch_size']}, gradient clipping 1.0.",
        f"- Steps: {state['step']} ({state['step'] * s['batch_size']} study passes); wall time "
        f"{(history[-1]['seconds'] if history else 0) / 60:.0f} min on 2 shared CPU cores, no GPU.",
        "- Final losses (mean of the last 20 steps): "
        + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()),
        *_finetune_lines(state.get("finetune") or {}),
    ])


def _finetune_lines(ft: dict) -> list[str]:
    if not ft:
        return []
    return [
        f"- Second stage (models/train/finetune.py): slice encoder frozen; its slice embeddings of the "
        f"{ft['studies']} rendered studies computed once, then slice fusion, projection, decoder and "
        f"diagnosis heads trained {ft['steps']} steps of batch {ft['batch_size']} (AdamW lr {ft['lr']}, "
        f"warm-up then cosine) with the report, diagnosis and slice-attention losses; "
        f"{ft['seconds'] / 60:.0f} min. Final losses: "
        + ", ".join(f"{k} {v:.3f}" for k, v in ft["final"].items()),
    ]


def set_model_card_section(package: Path, title: str, markdown: str) -> None:
    """Add or replace `## title` in MODEL_CARD.md and re-pin its hash in manifest.json."""
    package = Path(package)
    card_path = package / "MODEL_CARD.md"
    card = card_path.read_text(encoding="utf-8")
    header = f"## {title}\n"
    if header in card:
        before, _, after = card.partition(header)
        rest = after.split("\n## ", 1)
        card = before + (("## " + rest[1]) if len(rest) > 1 else "")
    card = card.rstrip("\n") + f"\n\n{header}{markdown.strip()}\n"
    card_path.write_text(card, encoding="utf-8")
    manifest_path = package / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"]["MODEL_CARD.md"] = sha256_file(card_path)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
