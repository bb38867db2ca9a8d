"""The phantom training configuration: a TINY-derived MedMPT and the training hyper-parameters.

Must not import app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.medmpt.config import INPUT_CHANNELS, TINY, MedMPTConfig

PACKAGE_NAME = "medmpt-tiny-phantom"
SEVERITY_CLASSES = ("CT-0", "CT-1", "CT-2", "CT-3")
# Render sizes of training phantoms (pixels per side); a study's size is drawn from its seed.
# About the 224-pixel model input, so a 5 mm nodule is still a few pixels across.
RENDER_SIZES = (192, 224, 256)
RENDER_SLICES = 32
# Each of the 32 slices is a thin slice sampled from a chest-long scan, as the runtime's
# nearest-slice sampling feeds a real series: its thickness (partial volume, noise) is drawn from
# the clinical protocols, not the 32-slice spacing (a 10 mm slab would hide small nodules).
RENDER_SLABS_MM = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)
# Names renders cached on disk (training and held-out evaluation), so a change of recipe never
# reuses old ones. The cached studies keep their report text too, so a change of the report
# writer is a change of recipe ("thin3": "an 8 mm nodule", was "a 8 mm").
RENDER_RECIPE = "thin3"
# Held-out evaluation seeds start here; training seeds are 0 .. cases-1 (offset by the seed).
HELD_OUT_BASE = 10_000_000
# Held-out seeds by use: `medmpt eval --generate N` scores on seed 0; `medmpt calibrate` (and
# `medmpt train` after export) fits the heads' temperatures on seed 1, on at least this many.
EVALUATION_SEED, CALIBRATION_SEED, MIN_CALIBRATION_STUDIES = 0, 1, 20


def phantom_config(vocab_size: int, patch_size: int = 32, vision_width: int = 64,
                   patch_stem: str = "linear", input_channels: str = "windows") -> MedMPTConfig:
    """TINY with a narrower ViT (`vision_width`, 32 per attention head, MLP and fusion FFN four
    times as wide), the tokenizer's vocabulary, a `patch_size` patch (32: a 7 x 7 grid; 16:
    14 x 14 as the paper), its `patch_stem` (models.medmpt.vision.PatchEmbed) and `input_channels`."""
    if vision_width < 32 or vision_width % 32:
        raise ValueError(f"the slice encoder's width must be a positive multiple of 32 (its head size), got {vision_width}")
    if input_channels not in INPUT_CHANNELS:
        raise ValueError(f"unknown input channels {input_channels!r} ({' or '.join(INPUT_CHANNELS)})")
    return replace(
        TINY, config_name="tiny-phantom", patch_size=patch_size, patch_stem=patch_stem,
        input_channels=input_channels, vision_width=vision_width, vision_depth=4,
        vision_heads=vision_width // 32, vision_mlp=4 * vision_width, fusion_ffn=4 * vision_width,
        text_width=192, text_layers=2,
        text_heads=4, text_ffn=768, vocab_size=vocab_size, dropout=0.0,
    )


PASTE_SHARE = 0.3  # stage zero: share of slices given a pasted synthetic nodule (models.train.nodule_paste)


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run (recorded in the model card)."""

    cases: int = 3000
    seed: int = 0
    epochs: float = 3.0
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 40
    max_tokens: int = 120
    diag_weight: float = 1.0
    slice_weight: float = 0.5
    patch_weight: float = 0.3
    threads: int = 2
    checkpoint_every: int = 25
    patch_size: int = 32  # of the slice encoder (phantom_config)
    vision_width: int = 64  # of the slice encoder (phantom_config)
    patch_stem: str = "linear"  # of the slice encoder (phantom_config)
    input_channels: str = "windows"  # MedMPTConfig.input_channels
    max_minutes: float | None = None  # wall budget; the LR schedule follows the larger of step and time progress
