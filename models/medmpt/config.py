"""MedMPT report-model configurations (`paper`, `tiny`) as dataclasses; imports nothing heavy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

RELEVANCE_METHODS = ("rollout", "cls-attention")  # of `patch_relevance`
INPUT_CHANNELS = ("windows", "lung-neighbours", "neighbours-ground-glass", "lung-slab")  # of `input_channels`

# Architecture fields that the model package manifest records (docs/model-package.md).
MANIFEST_FIELDS = (
    "config_name", "image_size", "patch_size", "patch_stem", "patch_relevance", "input_channels", "num_slices",
    "vision_width", "vision_depth", "vision_heads", "vision_mlp", "fusion_layers", "fusion_heads", "fusion_ffn", "text_width",
    "text_layers", "text_heads", "text_ffn", "vocab_size", "max_positions",
)


@dataclass(frozen=True)
class DiagnosisHead:
    """One diagnosis head: scan embedding -> Linear-ReLU-Linear -> len(classes) probabilities."""

    name: str
    classes: tuple[str, ...]


DEFAULT_HEADS: tuple[DiagnosisHead, ...] = (
    DiagnosisHead("covid_severity", ("CT-0", "CT-1", "CT-2", "CT-3")),
    DiagnosisHead("nodule", ("absent", "present")),
    DiagnosisHead("effusion", ("absent", "present")),
)


@dataclass(frozen=True)
class MedMPTConfig:
    """Sizes of the slice encoder, slice fusion, vision-to-text projection and report decoder."""

    config_name: str = "paper"
    image_size: int = 224
    patch_size: int = 16
    # "linear": the paper's patch projection (one convolution, kernel = stride = patch size);
    # "conv": a convolutional stem (3 x 3 convolutions of stride 2 down to the patch grid, then a
    # 1 x 1 projection; Xiao et al. 2021, "Early convolutions help transformers see better"),
    # for small slice encoders that must find objects a few pixels wide. Same tokens, same grid.
    patch_stem: str = "linear"
    # The in-plane heatmap (the vision graph's `patch_relevance`; the reference has none):
    # "rollout": attention rollout from each slice's CLS through every block (Abnar & Zuidema
    # 2020), which needs every block's full attention probabilities; "cls-attention": the last
    # block's CLS attention alone, so every block's attention can run as one fused kernel
    # (models.export.fused_vision; `paper` on an H200: 4.3 against 7.9 ms a scan).
    patch_relevance: str = "rollout"
    # What the three input channels show (the package's preprocessing windows follow from it,
    # models.export.package.preprocessing_spec): "windows": the reference's lung, wide and
    # mediastinal windows of each sampled slice; "lung-neighbours": the wide window replaced by
    # the lung window of the neighbouring sampled slices (their maximum), so a slice encoder can
    # tell a nodule (on one slice) from a vessel in cross-section (on the next ones too), as a
    # reader does by scrolling; "neighbours-ground-glass": as "lung-neighbours", with the
    # mediastinal window replaced by a narrow lung window (-1000 to -400 HU) in which ground-glass
    # nodules and opacities, faint in the lung window, stand out; "lung-slab": the wide window
    # replaced by the lung window of a thin slab around the slice (the maximum of the slice and the
    # planes a third of the way to the sampled slices around it), where a vessel shows as a tube
    # and a nodule stays round, as in the thin-slab MIPs radiologists read for nodules.
    input_channels: str = "windows"
    num_slices: int = 32
    vision_width: int = 768
    vision_depth: int = 12
    vision_heads: int = 12
    vision_mlp: int = 3072
    vision_eps: float = 1e-6
    fusion_layers: int = 2
    fusion_heads: int = 8
    fusion_ffn: int = 3072
    fusion_positions: int = 512
    fusion_eps: float = 1e-8
    text_width: int = 768
    text_layers: int = 6
    text_heads: int = 12
    text_ffn: int = 3072
    text_eps: float = 1e-12
    vocab_size: int = 21128
    max_positions: int = 512
    type_vocab_size: int = 2
    pad_token_id: int = 0
    dropout: float = 0.1
    heads: tuple[DiagnosisHead, ...] = field(default=DEFAULT_HEADS)

    @property
    def grid(self) -> int:
        """Patches per side (14 for 224 / 16)."""
        return self.image_size // self.patch_size

    @property
    def text_head_dim(self) -> int:
        return self.text_width // self.text_heads

    def architecture(self) -> dict:
        """The manifest's `architecture` object."""
        values = asdict(self)
        return {name: values[name] for name in MANIFEST_FIELDS}

    def with_heads(self, heads: tuple[DiagnosisHead, ...]) -> MedMPTConfig:
        return replace(self, heads=tuple(heads))


PAPER = MedMPTConfig()

TINY = MedMPTConfig(
    config_name="tiny", vision_width=192, vision_depth=4, vision_heads=3, vision_mlp=768,
    fusion_layers=2, fusion_heads=8, fusion_ffn=768, text_width=192, text_layers=2,
    text_heads=4, text_ffn=768, vocab_size=2000,
)

CONFIGS: dict[str, MedMPTConfig] = {"paper": PAPER, "tiny": TINY}


def get_config(name: str, **overrides) -> MedMPTConfig:
    """A named configuration, optionally with fields replaced (e.g. vocab_size of a tokenizer)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown MedMPT configuration {name!r}; known: {', '.join(CONFIGS)}")
    return replace(CONFIGS[name], **overrides)
