"""Write a MedMPT model package folder (format `medmpt-package/1`, docs/model-package.md).

Exports the four ONNX graphs, saves the tokenizer, writes MODEL_CARD.md and a manifest that
pins every file by SHA-256. Must not import app or ui; from inference it takes the SHA-256
and the default preprocessing, so the package's writer and reader agree.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from inference.package import sha256_file
from inference.preprocess import DEFAULT_PREPROCESSING
from models.export.onnx_export import (
    FP16_FLOAT32_IO,
    OPSET,
    convert_fp16,
    export_decoder,
    export_decoder_static,
    export_vision,
)
from models.medmpt.config import INPUT_CHANNELS
from models.medmpt.model import MedMPTReportModel
from models.medmpt.tokenizer import special_ids

FORMAT = "medmpt-package/1"
GRAPHS = {"vision": {"fp32": "vision.onnx", "fp16": "vision.fp16.onnx"},
          "decoder": {"fp32": "decoder.onnx", "fp16": "decoder.fp16.onnx"}}
STATIC_DECODER = "decoder_static.fp16.onnx"
"""The fixed-shape decoder step for CUDA graphs (fp16 only: only CUDA runs it)."""
# The reference preprocessing, as the runtime implements it: one definition for both sides.
PREPROCESSING = copy.deepcopy(DEFAULT_PREPROCESSING)
# MedMPTConfig.input_channels "lung-neighbours": the wide window's place holds the lung window
# of the neighbouring sampled slices (inference.preprocess.neighbour_channels).
NEIGHBOUR_WINDOW = {"name": "lung-neighbours", "width": 1500, "level": -400, "slices": "neighbours-max"}
# MedMPTConfig.input_channels "neighbours-ground-glass": the mediastinal window's place holds a
# narrow lung window, -1000 to -400 HU, where ground glass (-700 to -300 HU) is mid-grey on dark lung.
GROUND_GLASS_WINDOW = {"name": "ground-glass", "width": 600, "level": -700}
# MedMPTConfig.input_channels "lung-slab": the second channel is the lung window of a thin slab
# around the slice (its maximum with the planes a third of the way to the sampled slices around
# it; inference.preprocess), where a vessel shows as a tube and a nodule stays round.
SLAB_WINDOW = {"name": "lung-slab", "width": 1500, "level": -400, "slices": "slab-max"}


def preprocessing_spec(input_channels: str = "windows") -> dict:
    """The package's preprocessing for a model trained on `input_channels`."""
    if input_channels not in INPUT_CHANNELS:
        raise ValueError(f"unknown input channels {input_channels!r} ({' or '.join(INPUT_CHANNELS)})")
    spec = copy.deepcopy(PREPROCESSING)
    if input_channels == "lung-slab":
        spec["windows"][1] = dict(SLAB_WINDOW)
    elif input_channels != "windows":
        spec["windows"][1] = dict(NEIGHBOUR_WINDOW)
    if input_channels == "neighbours-ground-glass":
        spec["windows"][2] = dict(GROUND_GLASS_WINDOW)
    return spec
GENERATION = {"beams": 2, "max_steps": 120, "no_repeat_previous": True, "length_penalty": 0.0}


@dataclass(frozen=True)
class PackageInfo:
    """The descriptive manifest fields of a package."""

    name: str
    version: str
    display_name: str
    label: str
    intended_use: str
    licence: str
    provenance: str
    clinical_use: bool = False
    max_length: int = 120


PACKAGE_FILES = ("manifest.json", "tokenizer.json", "MODEL_CARD.md", STATIC_DECODER,
                 *(name for files in GRAPHS.values() for name in files.values()))


def prepare_folder(out_dir: Path, overwrite: bool) -> Path:
    """Create `out_dir`; refuse a non-empty one unless `overwrite` (then clear package files)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if present and not overwrite:
        raise FileExistsError(f"{out} is not empty ({', '.join(present[:3])}...); choose another folder")
    others = [name for name in present if name not in PACKAGE_FILES]
    if others:
        raise FileExistsError(f"{out} holds files that are not part of a package ({', '.join(others[:3])})")
    for name in present:
        (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_package(model: MedMPTReportModel, tokenizer: Tokenizer, out_dir: Path,
                  info: PackageInfo, fp16: bool = True, overwrite: bool = False) -> Path:
    """Export `model` with `tokenizer` into `out_dir` (new or empty, or a package if
    `overwrite`); returns the folder."""
    config = model.config
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.get_vocab_size()} tokens but the model's "
                         f"vocabulary is {config.vocab_size}")
    out = prepare_folder(out_dir, overwrite)
    model.eval()
    tokenizer.save(str(out / "tokenizer.json"))
    export_vision(model, out / GRAPHS["vision"]["fp32"])
    export_decoder(model, out / GRAPHS["decoder"]["fp32"])
    graphs = {kind: dict(files) for kind, files in GRAPHS.items()}
    for kind, files in graphs.items():
        if fp16:
            convert_fp16(out / files["fp32"], out / files["fp16"], FP16_FLOAT32_IO[kind],
                         fuse=_fusion_shape(config.architecture(), kind))
        else:
            files.pop("fp16")
    if fp16:
        graphs["decoder_static"] = {"fp16": write_static_decoder(model, out)}
    (out / "MODEL_CARD.md").write_text(model_card(config.architecture(), info), encoding="utf-8")
    manifest = build_manifest(model, tokenizer, info, graphs, out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def write_static_decoder(model: MedMPTReportModel, folder: Path) -> str:
    """Export the fixed-shape fp16 decoder step into `folder` (batch = the beams, capacity =
    the most tokens a report may have); returns its file name."""
    fp32 = Path(folder) / (STATIC_DECODER + ".fp32.tmp")
    try:
        export_decoder_static(model, fp32, batch=int(GENERATION["beams"]),
                              capacity=int(GENERATION["max_steps"]))
        convert_fp16(fp32, Path(folder) / STATIC_DECODER, FP16_FLOAT32_IO["decoder_static"],
                     fuse=_fusion_shape(model.config.architecture(), "decoder_static"))
    finally:
        fp32.unlink(missing_ok=True)
    return STATIC_DECODER


def add_static_decoder(package: Path, model: MedMPTReportModel) -> str:
    """Add the fixed-shape decoder to a package written before it existed, from the torch model
    with the package's weights (the caller checks that they are); the manifest is replaced last,
    in one step. Returns the file name."""
    folder = Path(package)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    name = write_static_decoder(model, folder)
    manifest["graphs"]["decoder_static"] = {"fp16": name}
    manifest["files"][name] = sha256_file(folder / name)
    replace_manifest(folder, manifest)
    return name


def _fusion_shape(architecture: dict, kind: str) -> tuple[int, int]:
    prefix = "vision" if kind == "vision" else "text"  # decoder, decoder_static: text
    return int(architecture[f"{prefix}_heads"]), int(architecture[f"{prefix}_width"])


def refresh_fp16_graphs(package: Path) -> list[str]:
    """Derive a package's fp16 graphs again from its fp32 ones with this version's conversion
    (float32 pixels in, fused transformer operators) and re-pin their hashes; returns the files
    rewritten. The fp32 graphs, and so everything the CPU runs, stay as they are. The new graphs
    are written beside the old ones first; the manifest is replaced last, in one step."""
    folder = Path(package)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    pending = {}
    for kind, files in manifest["graphs"].items():
        if "fp16" in files and "fp32" in files:  # not decoder_static: exported from torch only
            fresh = folder / (files["fp16"] + ".new")
            convert_fp16(folder / files["fp32"], fresh, FP16_FLOAT32_IO[kind],
                         fuse=_fusion_shape(manifest["architecture"], kind))
            pending[files["fp16"]] = fresh
    for name, fresh in pending.items():
        fresh.replace(folder / name)
        manifest["files"][name] = sha256_file(folder / name)
    replace_manifest(folder, manifest)
    return sorted(pending)


def replace_manifest(folder: Path, manifest: dict) -> None:
    """Write manifest.json in one step: a failure leaves the old manifest whole."""
    replace_file(Path(folder) / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))


def replace_file(path: Path, data: bytes) -> None:
    """Write `path` in one step (a temporary file beside it, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_manifest(model: MedMPTReportModel, tokenizer: Tokenizer, info: PackageInfo,
                   graphs: dict, folder: Path) -> dict:
    """The manifest object; `files` hashes every file in `folder` except manifest.json."""
    tokens = special_ids(tokenizer) | {"max_length": info.max_length}
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())
             if p.is_file() and p.name != "manifest.json"}
    return {
        "format": FORMAT, "name": info.name, "version": info.version,
        "display_name": info.display_name, "clinical_use": info.clinical_use, "label": info.label,
        "intended_use": info.intended_use, "licence": info.licence, "provenance": info.provenance,
        "architecture": model.config.architecture(),
        "preprocessing": preprocessing_spec(model.config.input_channels),
        "tokens": tokens, "generation": GENERATION,
        "diagnosis": [{"name": h.name, "classes": list(h.classes)} for h in model.config.heads],
        "graphs": graphs, "opset": OPSET, "files": files,
    }


def model_card(architecture: dict, info: PackageInfo) -> str:
    """A short Markdown model card."""
    rows = "\n".join(f"| {key} | {value} |" for key, value in architecture.items())
    return (
        f"# {info.display_name}\n\n**{info.label}**\n\n"
        f"- Name: `{info.name}` version {info.version}\n"
        f"- Clinical use: {'yes' if info.clinical_use else 'no'}\n"
        f"- Intended use: {info.intended_use}\n- Licence: {info.licence}\n"
        f"- Provenance: {info.provenance}\n\n"
        "## Model\nMedMPT report model: ViT slice encoder over 32 slices, slice-fusion "
        "transformer, vision-to-text projection, BERT decoder with cross-attention to the 32 "
        "slice tokens; diagnosis heads on the scan embedding.\n\n"
        f"| field | value |\n|---|---|\n{rows}\n\n"
        "## Limitations\nA draft generator: every report must be read and signed by a "
        "radiologist. Slice attention and patch relevance maps show where the model looked, not "
        "proof of a finding.\n"
    )
