"""Convert an official MedMPT checkpoint (reference section 9) into our torch report model.

The official names already match ours for the report parts (`vision_encoder_q.`,
`vision_fusion_q.`, `vision_to_text.`, `text_decoder.`); the converter strips `module.`,
ignores pretraining-only parts (momentum encoder, MAE decoder, text encoder, queues), checks
every shape and reports missing keys by name. Must not import app, ui or inference.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from models.medmpt.config import MedMPTConfig, get_config
from models.medmpt.model import REPORT_PREFIXES, MedMPTReportModel

WORD_EMBEDDINGS = "text_decoder.bert.bert.embeddings.word_embeddings.weight"
LM_BIAS = "text_decoder.bert.cls.predictions.bias"
LM_DECODER_BIAS = "text_decoder.bert.cls.predictions.decoder.bias"
# Buffers some transformers versions saved; they carry no weights.
HARMLESS = ("text_decoder.bert.bert.embeddings.position_ids",
            "text_decoder.bert.bert.embeddings.token_type_ids")


class ConversionError(ValueError):
    """The checkpoint does not fit the MedMPT report model; the message names the key."""


@dataclass(frozen=True)
class Conversion:
    model: MedMPTReportModel
    used: int
    ignored: tuple[str, ...]  # top-level prefixes of the ignored keys


def load_checkpoint(path: Path, trust_pickle: bool = False) -> Mapping[str, torch.Tensor]:
    """The state dict inside a checkpoint file (`{"model": state}` or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"checkpoint not found: {path}")
    if not _looks_like_torch_file(path):
        raise ConversionError(f"{path.name} is not a readable torch checkpoint (neither zip nor pickle)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        raise ConversionError(
            f"{path.name} holds Python objects besides tensors; if you trust its source, "
            f"rerun with --trust-pickle ({str(exc).splitlines()[0]})"
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise ConversionError(f"{path.name} is not a readable torch checkpoint: {exc}") from exc
    state = blob.get("model", blob) if isinstance(blob, Mapping) else None
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path.name} holds no state dict (expected a dict with key 'model')")
    return state


def _looks_like_torch_file(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(2)
    return zipfile.is_zipfile(path) or head[:1] == b"\x80"


def report_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Strip `module.`; keep the report parts; name the ignored top-level prefixes."""
    kept: dict[str, torch.Tensor] = {}
    ignored: set[str] = set()
    for key, value in state.items():
        name = key.removeprefix("module.")
        if name in HARMLESS:
            continue
        if name.startswith(REPORT_PREFIXES):
            kept[name] = value
        else:
            ignored.add(name.split(".", 1)[0])
    return kept, tuple(sorted(ignored))


def convert_state_dict(state: Mapping[str, torch.Tensor], config: MedMPTConfig | str = "paper") -> Conversion:
    """Build the report model from an official-layout state dict (no diagnosis heads)."""
    kept, ignored = report_state(state)
    if WORD_EMBEDDINGS not in kept:
        raise ConversionError(f"checkpoint has no 'module.{WORD_EMBEDDINGS}': not a MedMPT report checkpoint")
    base = get_config(config) if isinstance(config, str) else config
    config = replace(base, vocab_size=int(kept[WORD_EMBEDDINGS].shape[0]), heads=())
    if LM_BIAS in kept and LM_DECODER_BIAS not in kept:
        kept[LM_DECODER_BIAS] = kept[LM_BIAS]  # tied in the official model
    model = MedMPTReportModel(config).eval()
    expected = model.state_dict()
    missing = [k for k in expected if k not in kept]
    unexpected = [k for k in kept if k not in expected]
    if missing or unexpected:
        raise ConversionError(_key_message(missing, unexpected, config.config_name))
    for key, tensor in expected.items():
        if tuple(kept[key].shape) != tuple(tensor.shape):
            raise ConversionError(f"checkpoint key 'module.{key}' has shape {tuple(kept[key].shape)}; "
                                  f"the {config.config_name} model expects {tuple(tensor.shape)}")
    model.load_state_dict({k: v.float() for k, v in kept.items()}, strict=True)
    return Conversion(model, len(kept), ignored)


def _key_message(missing: list[str], unexpected: list[str], config_name: str) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} key(s) missing, e.g. 'module.{missing[0]}'")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), e.g. 'module.{unexpected[0]}'")
    return f"checkpoint does not match the {config_name} report model: " + "; ".join(parts)
