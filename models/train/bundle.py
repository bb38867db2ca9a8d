"""Bundle a trained phantom checkpoint as a model package and keep its model card current.

Must not import app or ui.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer

from models.export.package import (
    PackageInfo,
    replace_file,
    replace_manifest,
    sha256_file,
    write_package,
)
from models.medmpt.config import DiagnosisHead, MedMPTConfig
from models.medmpt.model import MedMPTReportModel
from models.train.config import PACKAGE_NAME
from models.train.loop import recent_means

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


def _stages(state: dict) -> list[str]:
    """What each training stage that ran did, in a few words."""
    s, parts = state["settings"], []
    if state.get("encoder_source"):
        e = state["encoder_source"]
        parts.append(f"the slice encoder of package {e['package']} {e['version']}"
                     + (" as stage zero's start" if state.get("pretrain") else ", frozen (no stage zero)"))
    if state.get("pretrain"):
        p = state["pretrain"]
        parts.append(f"{p['steps']} slice-encoder steps of {p['batch_size']} slices ({p['seconds'] / 60:.0f} min)")
    if state["step"]:
        seconds = state["history"][-1]["seconds"] if state.get("history") else 0.0
        parts.append(f"{state['step']} end-to-end steps of batch {s['batch_size']} ({seconds / 60:.0f} min)")
    if state.get("finetune"):
        f = state["finetune"]
        parts.append(f"{f['steps']} second-stage steps of batch {f['batch_size']} ({f['seconds'] / 60:.0f} min)")
    return parts


def _studies(state: dict) -> int:
    for stage in ("finetune", "pretrain"):
        if (state.get(stage) or {}).get("studies"):
            return state[stage]["studies"]
    history = state.get("history") or []
    return history[-1].get("studies", state["settings"]["cases"]) if history else state["settings"]["cases"]


def provenance(state: dict, command: str) -> str:
    s = state["settings"]
    first = s["seed"] * 1_000_000
    source = state.get("encoder_source")
    start = (f"Slice encoder taken from package {source['package']} {source['version']} (model hash "
             f"{source['model_hash']}); the rest trained from random initialisation"
             if source else "Trained from random initialisation")
    return (f"{start} by models/cli_train.py on {_studies(state)} synthetic "
            f"chest-CT phantoms (models.train.data.render_case: 32 thin slices over the chest, "
            f"from seeds {first}..{first + s['cases'] - 1}), "
            f"training seed {s['seed']}, " + " + ".join(_stages(state)) + " on 2 CPU threads"
            f"; command: {command}; exported {_dt.date.today().isoformat()}")


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
    """The model card's training section: command, seed, data recipe, stages, losses, wall time."""
    s = state["settings"]
    first = s["seed"] * 1_000_000
    return "\n".join([
        f"- Command: `{command}`",
        f"- Seed: {s['seed']} (torch, numpy and python seeded; deterministic torch kernels; "
        f"{s['threads']} threads)",
        f"- Slice encoder: {_encoder_shape(state)}{s.get('patch_size', 32)}-pixel patches "
        f"({224 // s.get('patch_size', 32)} x {224 // s.get('patch_size', 32)} grid of patch relevance per slice)",
        f"- Data: synthetic chest-CT phantoms `models.train.data.render_case(seed)`, "
        f"seeds {first}..{first + s['cases'] - 1}: 32 thin slices spread over the chest (as the "
        "runtime samples a thin-slice series), slice thickness 1-5 mm and matrix 192/224/256 drawn "
        "per seed; each preprocessed "
        "once by `inference.preprocess.preprocess` with the package's own spec (5 mm nearest z "
        f"resampling, the MedMPT 32-slice rule, 224 x 224 antialiased bilinear, {_channels(state)}) and "
        "cached as uint8 grey levels (bit-exact with the runtime input). "
        f"{_studies(state)} of the {s['cases']} planned studies were rendered and used.",
        "- Reports: the phantom report writer's text, WordPiece tokenizer learnt from 5,000 phantom "
        "reports (case kept, hyphenated words whole), at most 120 tokens.",
        *_encoder_source_lines(state.get("encoder_source") or {}, bool(state.get("pretrain"))),
        *_pretrain_lines(state.get("pretrain") or {}),
        *_stage_one_lines(state),
        *_finetune_lines(state.get("finetune") or {}),
        "- Hardware: 2 shared CPU cores, no GPU. Total: " + " + ".join(_stages(state)) + ".",
    ])


def _channels(state: dict) -> str:
    """What the three input channels show, from the checkpoint's architecture."""
    channels = (state.get("config") or {}).get("input_channels")
    if channels in ("lung-neighbours", "neighbours-ground-glass"):
        third = ("a ground-glass window (-1000 to -400 HU)" if channels == "neighbours-ground-glass"
                 else "the mediastinal window")
        return ("three channels: the lung window, the lung window of the neighbouring sampled slices (their "
                f"maximum; made from the cached windows by models.train.data.input_grey) and {third}")
    if channels == "lung-slab":
        return ("three channels: the lung window, the lung window of a thin slab around the slice (its maximum "
                "with the planes a third of the way to the sampled slices below and above) and the mediastinal window")
    return "three HU windows"


def _encoder_shape(state: dict) -> str:
    """'64 wide, 4 layers, 2 heads; ' from the checkpoint's architecture (empty if it has none)."""
    c = state.get("config") or {}
    if not {"vision_width", "vision_depth", "vision_heads"} <= c.keys():
        return ""
    stem = ("a convolutional stem (3 x 3 stride-2 convolutions, then 1 x 1) before the transformer; "
            if c.get("patch_stem") == "conv" else "")
    return f"{c['vision_width']} wide, {c['vision_depth']} layers, {c['vision_heads']} heads; {stem}"


def _encoder_source_lines(e: dict, continued: bool = False) -> list[str]:
    if not e:
        return []
    earlier = e.get("card_stage_zero") or "its card does not say"
    use = ("the start of this run's stage zero (below), which trains it further"
           if continued else "frozen; no stage zero in this run")
    return [
        f"- Slice encoder taken from package {e['package']} {e['version']} (model hash {e['model_hash']}; "
        f"vision.onnx SHA-256 {e['vision_sha256']}) by `--slice-encoder` "
        f"(models/train/encoder_from_package.py: weights read back from its fp32 vision graph), {use}. "
        f"How that encoder was trained, from its card: {earlier}",
    ]


def _pretrain_lines(p: dict) -> list[str]:
    if not p:
        return []
    return [
        f"- Stage zero (models/train/slice_pretrain.py): the slice encoder alone on single slices of the "
        f"{p['studies']} studies ({p['slices']} sampled slices; {p['focal_share']:.0%} of each batch"
        + ("'s single slices" if p.get("whole_studies") else "") + " drawn "
        "from slices holding a nodule), with dense phantom ground truth: per-slice labels on the CLS "
        "embedding (nodule, nodule left/right, COVID-pattern opacity, effusion left/right, cardiomegaly, "
        "emphysema; the study's COVID grade on slices the opacity reaches), per-patch nodule and "
        "effusion boxes on the patch tokens, and the CLS attention rollout pushed into the finding's "
        "box on slices holding one (weight 0.3). "
        + (f"A synthetic nodule (models/train/nodule_paste.py: phantom subtypes, sizes and HU, the slice's "
           f"own noise) pasted into the lungs of {p['paste_share']:.0%} of the slices, labels and patch "
           "boxes to match. " if p.get("paste_share") else "")
        + (f"Each batch also holds {p['whole_studies']} whole stud{'y' if p['whole_studies'] == 1 else 'ies'} "
           f"(its 32 slices among the batch's), with a study-level nodule loss (weight {p.get('study_weight', 1.0)}): "
           "the largest slice nodule score of the study against whether it holds a nodule (multiple-instance "
           f"learning: the study's most nodule-like nodule-free slice is pushed down); {p.get('study_paste', 0):.0%} of "
           "these studies get a pasted nodule on one slice. " if p.get("whole_studies") else "")
        + (f"The new probe heads trained alone for the first {p['probe_steps']} steps, the encoder held "
           "still. " if p.get("probe_steps") else "")
        + "Training-only probe heads, discarded. "
        f"{p['steps']} steps of {p['batch_size']} slices, AdamW lr {p['lr']}, warm-up then cosine; "
        f"{p['seconds'] / 60:.0f} min. Final losses: " + ", ".join(f"{k} {v:.3f}" for k, v in p["final"].items()),
    ]


def _stage_one_lines(state: dict) -> list[str]:
    s, history = state["settings"], state.get("history", [])
    if not state["step"]:
        return ["- Stage one (end to end, models/train/loop.py): not run for this package."]
    mean = recent_means(history, 20, ("text", "diagnosis", "slices", "patches"))
    return [
        "- Stage one (end to end): teacher-forced report cross-entropy + cross-entropy of the COVID "
        f"severity (CT-0..CT-3), nodule and effusion heads (weight {s['diag_weight']}) + two explanation "
        "losses on the synthetic ground truth: the decoder cross-attention (layers and heads averaged, "
        "as the runtime reads it) of each finding sentence's tokens is pushed onto the sampled slices "
        f"of that finding (-log of the attention mass there, weight {s['slice_weight']}), and the slice "
        "encoder's CLS attention rollout on slices holding a nodule or effusion onto the finding's box "
        f"(weight {s['patch_weight']}). AdamW lr {s['lr']}, weight decay {s['weight_decay']}, "
        f"{s['warmup_steps']} warm-up steps then cosine to 5 %, batch {s['batch_size']}, gradient "
        f"clipping 1.0; {state['step']} steps ({state['step'] * s['batch_size']} study passes), "
        f"{(history[-1]['seconds'] if history else 0) / 60:.0f} min. Final losses (mean of the last 20 "
        "steps): " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()),
    ]


def _finetune_lines(ft: dict) -> list[str]:
    if not ft:
        return []
    return [
        f"- Stage two (models/train/finetune.py): slice encoder frozen; its slice embeddings of the "
        f"{ft['studies']} rendered studies computed once, then slice fusion, projection, decoder and "
        f"diagnosis heads trained {ft['steps']} steps of batch {ft['batch_size']} (AdamW lr {ft['lr']}, "
        f"warm-up then cosine{_dropout_clause(ft)}) with the teacher-forced report cross-entropy, the cross-entropy of the "
        f"COVID severity (CT-0..CT-3), nodule and effusion heads, and the slice-attention loss (each "
        f"finding sentence's decoder cross-attention, layers and heads averaged as the runtime reads it, "
        f"pushed onto the finding's sampled slices){_slice_label_clause(ft)}; {ft['seconds'] / 60:.0f} min. Final losses: "
        + ", ".join(f"{k} {v:.3f}" for k, v in ft["final"].items()),
    ]


def _dropout_clause(ft: dict) -> str:
    return f", dropout {ft['dropout']:g} while training" if ft.get("dropout") is not None else ""


def _slice_label_clause(ft: dict) -> str:
    weight = ft.get("slice_label_weight") or 0.0
    if not weight:
        return ""
    return (f", and, weighted {weight:g}, the slice-label loss (a training-only linear head, discarded, reads "
            "each fused slice token and learns that slice's phantom ground truth: nodule and its side, "
            "COVID-pattern opacity, effusion side, cardiomegaly, emphysema)")


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
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    previous = card_path.read_bytes()
    replace_file(card_path, card.encode("utf-8"))  # each file is replaced whole
    manifest["files"]["MODEL_CARD.md"] = sha256_file(card_path)
    try:
        replace_manifest(package, manifest)
    except BaseException:  # the old card matches the old manifest: put it back
        replace_file(card_path, previous)
        raise
