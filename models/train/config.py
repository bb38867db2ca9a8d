"""The phantom training configuration: a TINY-derived MedMPT and the training hyper-parameters.

Must not import app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.medmpt.config import TINY, MedMPTConfig

PACKAGE_NAME = "medmpt-tiny-phantom"
SEVERITY_CLASSES = ("CT-0", "CT-1", "CT-2", "CT-3")
# Render sizes of training phantoms (pixels per side); a study's size is drawn from its seed.
RENDER_SIZES = (128, 128, 160)
RENDER_SLICES = 32
# Held-out evaluation seeds start here; training seeds are 0 .. cases-1 (offset by the seed).
HELD_OUT_BASE = 10_000_000


def phantom_config(vocab_size: int) -> MedMPTConfig:
    """TINY with a 32-pixel patch (7 x 7 grid), a narrower ViT and the tokenizer's vocabulary."""
    return replace(
        TINY, config_name="tiny-phantom", patch_size=32, vision_width=64, vision_depth=4,
        vision_heads=2, vision_mlp=256, fusion_ffn=256, text_width=192, text_layers=2,
        text_heads=4, text_ffn=768, vocab_size=vocab_size, dropout=0.0,
    )


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
    max_minutes: float | None = None  # wall budget; the LR schedule follows the larger of step and time progress
