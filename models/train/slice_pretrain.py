"""Stage zero: the slice encoder learns single slices with dense ground truth before anything else.

Training the whole model end to end from study-level text teaches the ViT slowly: a 5 mm nodule
fills a few pixels of one slice in 32, and the only signal reaching it is a few report tokens.
The phantoms know exactly which slice holds what and where, so this stage trains the slice
encoder alone on random slices (nodule slices over-sampled) with:
- per-slice labels on the CLS embedding (the token the slice fusion reads): nodule, nodule
  left/right, COVID-pattern opacity, effusion left/right, cardiomegaly, emphysema, and the
  study's COVID severity on slices the opacity reaches (CT-0 elsewhere);
- per-patch labels on the patch tokens: which patches hold a nodule or an effusion;
- the attention-rollout loss of stage one (the CLS should look at the finding's box), so the
  in-plane heatmaps the runtime shows point at the finding;
- optionally (`whole_studies`), a study-level nodule loss on whole studies: the nodule logit's
  maximum over a study's 32 slices against "the study holds a nodule". Single slices teach each
  slice on its own; the report model needs the study, where one vessel in cross-section scoring
  high on any of 32 slices is a false nodule. The maximum pushes down exactly that slice (hard
  negatives, multiple-instance learning). A nodule is pasted into one slice of some of these
  studies, so positives are not only the training studies' own.
The probe heads are thrown away; only the slice encoder's weights are kept. Must not import app
or ui.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.medmpt.vision import patch_relevance
from models.train.config import PASTE_SHARE
from models.train.data import StudyRecord, grey_to_pixels, input_grey, needs_neighbours
from models.train.loop import Trainer, format_losses, lr_factor, recent_means
from models.train.nodule_paste import box_patches, paste_nodule
from models.train.step import apply_update
from models.train.targets import patch_targets

SLICE_LABELS = ("nodule", "nodule_left", "nodule_right", "covid", "effusion_left", "effusion_right",
                "cardiomegaly", "emphysema")
EPS = 1e-6


def slice_labels(record: StudyRecord) -> tuple[np.ndarray, np.ndarray]:
    """((S, len(SLICE_LABELS)) float labels, (S,) severity class) of a study's sampled slices."""
    oi = np.asarray(record.original_indices)
    labels = np.zeros((len(oi), len(SLICE_LABELS)), dtype=np.float32)
    severity = np.zeros(len(oi), dtype=np.int64)
    for finding in record.findings:
        lo, hi = finding.get("slice_range") or (None, None)
        if lo is None:
            continue
        inside = (oi >= lo) & (oi <= hi)
        kind, side = finding["type"], finding.get("side") or ""
        columns = {
            "nodule": ["nodule", f"nodule_{side}"],
            "covid": ["covid"],
            "effusion": [f"effusion_{s}" for s in ("left", "right") if side in (s, "both", "bilateral")],
            "cardiomegaly": ["cardiomegaly"],
            "emphysema": ["emphysema"],
        }.get(kind, [])
        for name in columns:
            if name in SLICE_LABELS:
                labels[inside, SLICE_LABELS.index(name)] = 1.0
        if kind == "covid":
            severity[inside] = record.severity
    return labels, severity


class SliceProbe(nn.Module):
    """Training-only heads: CLS -> slice labels + severity; patch tokens -> nodule/effusion."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.slice_head = nn.Linear(width, len(SLICE_LABELS) + 4)
        self.patch_head = nn.Linear(width, 2)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.slice_head(tokens[:, 0])
        return out[:, : len(SLICE_LABELS)], out[:, len(SLICE_LABELS):], self.patch_head(tokens[:, 1:])


@dataclass(frozen=True)
class PretrainSettings:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    focal_share: float = 0.25  # share of each batch drawn from slices holding a nodule
    patch_weight: float = 1.0
    rollout_weight: float = 0.3
    paste_share: float = PASTE_SHARE
    warmup_steps: int = 50
    max_minutes: float | None = None
    whole_studies: int = 0  # whole studies in each batch (their slices count in batch_size)
    study_weight: float = 1.0
    study_paste: float = 0.5  # share of those studies given a pasted nodule on one slice
    probe_steps: int = 0  # first steps training the new probe heads alone, the encoder held still


class SlicePool:
    """Every sampled slice of the cached studies, with its labels and patch targets."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        grid = trainer.model.config.grid
        self.studies = sorted(trainer._available())
        labels, severity, masks = [], [], []
        for index in self.studies:
            record = trainer.records[index]
            lab, sev = slice_labels(record)
            labels.append(lab)
            severity.append(sev)
            masks.append(np.stack([_box_mask(record, kind, grid) for kind in ("nodule", "effusion")], axis=1))
        self.labels = np.concatenate(labels)  # (N*S, L)
        self.severity = np.concatenate(severity)
        self.masks = np.concatenate(masks)  # (N*S, 2, G, G): nodule, effusion
        self.slices = trainer.model.config.num_slices
        self.channels = trainer.model.config.input_channels
        self.neighbours = needs_neighbours(self.channels)  # a slice's input reads the slices beside it
        self.grid = grid
        self.focal = np.flatnonzero(self.labels[:, 0] * self.masks[:, 0].reshape(len(self.masks), -1).max(1))

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, rows: np.ndarray, rng: np.random.Generator | None = None,
              paste_share: float = 0.0) -> dict[str, torch.Tensor]:
        """Slices `rows`; with `rng`, a `paste_share` of them get a pasted nodule (labels and
        patch mask updated to match)."""
        rows = np.sort(rows)
        grey = np.stack([self.trainer.cache.pixels[self.studies[r // self.slices], r % self.slices] for r in rows])
        labels, masks = self.labels[rows].copy(), self.masks[rows].copy()
        if rng is not None and paste_share > 0:
            for j in np.flatnonzero(rng.random(len(rows)) < paste_share):
                self._paste(grey, labels, masks, j, rng)
        if self.neighbours:  # a pasted nodule is on its own slice only
            grey = np.stack([self._with_neighbours(grey[k], r) for k, r in enumerate(rows)])
        else:
            grey = input_grey(grey, self.channels)
        return self._tensors(grey, labels, masks, rows)

    def _with_neighbours(self, grey: np.ndarray, row: int) -> np.ndarray:
        """Model input channels of pool slice `row`, whose cached channels are `grey` (5, H, W)."""
        study, j = self.studies[row // self.slices], row % self.slices
        lo, hi = max(j - 1, 0), min(j + 2, self.slices)
        stack = np.array(self.trainer.cache.pixels[study, lo:hi])
        stack[j - lo] = grey
        return input_grey(stack, self.channels)[j - lo]

    def study_batch(self, studies: np.ndarray, rng: np.random.Generator,
                    paste_share: float) -> dict[str, torch.Tensor]:
        """All sampled slices of pool studies `studies`, in order (S per study); a `paste_share` of
        the studies get a pasted nodule on one of their slices (tried on up to 4 slices)."""
        rows = (np.asarray(studies)[:, None] * self.slices + np.arange(self.slices)).ravel()
        grey = np.stack([self.trainer.cache.pixels[self.studies[r // self.slices], r % self.slices] for r in rows])
        labels, masks = self.labels[rows].copy(), self.masks[rows].copy()
        for k in np.flatnonzero(rng.random(len(studies)) < paste_share):
            for j in k * self.slices + rng.permutation(self.slices)[:4]:
                if self._paste(grey, labels, masks, j, rng):
                    break
        studies_grey = grey.reshape(len(studies), self.slices, *grey.shape[1:])
        grey = np.concatenate([input_grey(g, self.channels) for g in studies_grey])
        return self._tensors(grey, labels, masks, rows)

    def _paste(self, grey: np.ndarray, labels: np.ndarray, masks: np.ndarray, j: int,
               rng: np.random.Generator) -> bool:
        pasted = paste_nodule(grey[j], rng)
        if pasted is None:
            return False
        labels[j, SLICE_LABELS.index("nodule")] = 1.0
        labels[j, SLICE_LABELS.index(f"nodule_{pasted.side}")] = 1.0
        masks[j, 0] = np.maximum(masks[j, 0], box_patches(pasted.box, grey.shape[-1], self.grid))
        return True

    def _tensors(self, grey: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                 rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixels": grey_to_pixels(torch.from_numpy(grey)),
                "labels": torch.from_numpy(labels),
                "severity": torch.from_numpy(self.severity[rows]),
                "masks": torch.from_numpy(masks)}


def _box_mask(record: StudyRecord, kind: str, grid: int) -> np.ndarray:
    """(S, G, G) patches inside the boxes of the study's findings of one type."""
    findings = [f for f in record.findings if f["type"] == kind]
    return patch_targets(findings, record.original_indices, record.size, grid)[0]


def pretrain_losses(trainer: Trainer, probe: SliceProbe, batch: dict[str, torch.Tensor],
                    settings: PretrainSettings) -> dict[str, torch.Tensor]:
    tokens, maps = trainer.model.vision_encoder_q.all_tokens(batch["pixels"])
    slice_logits, severity_logits, patch_logits = probe(tokens)
    labels = F.binary_cross_entropy_with_logits(slice_logits, batch["labels"])
    severity = F.cross_entropy(severity_logits, batch["severity"])
    masks = batch["masks"].flatten(2).transpose(1, 2)  # (N, P, 2)
    patches = F.binary_cross_entropy_with_logits(patch_logits, masks, pos_weight=torch.tensor([20.0, 5.0]))
    focal = masks.sum(-1).clamp(max=1.0)  # (N, P)
    chosen = focal.sum(-1) > 0
    if bool(chosen.any()):
        relevance = patch_relevance(maps, trainer.model.config.patch_relevance)  # what the package will show
        rollout = -torch.log((relevance * focal).sum(-1)[chosen] + EPS).mean()
    else:
        rollout = labels * 0.0
    total = labels + severity + settings.patch_weight * patches + settings.rollout_weight * rollout
    losses = {"labels": labels, "severity": severity, "patches": patches, "rollout": rollout}
    if settings.whole_studies:
        rows = settings.whole_studies * trainer.model.config.num_slices
        losses["study"] = study_loss(slice_logits[-rows:, 0], batch["labels"][-rows:, 0], settings.whole_studies)
        total = total + settings.study_weight * losses["study"]
    return {"loss": total, **losses}


def study_loss(nodule_logits: torch.Tensor, nodule_labels: torch.Tensor, studies: int) -> torch.Tensor:
    """Multiple-instance loss of the whole studies at the end of a batch (`studies` of them, of
    `num_slices` rows each): each study's largest slice nodule logit against whether any of its
    slices holds a nodule."""
    return F.binary_cross_entropy_with_logits(nodule_logits.view(studies, -1).max(-1).values,
                                              nodule_labels.view(studies, -1).max(-1).values)


def pretrain_slices(trainer: Trainer, settings: PretrainSettings,
                    log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Train the slice encoder alone; records the run in `trainer.pretrain`; returns the losses per step."""
    pool = SlicePool(trainer)
    encoder = trainer.model.vision_encoder_q
    probe = SliceProbe(trainer.model.config.vision_width)
    params = [*encoder.parameters(), *probe.parameters()]
    optimiser = torch.optim.AdamW([{"params": list(encoder.parameters())}, {"params": list(probe.parameters())}],
                                  lr=settings.lr, weight_decay=trainer.settings.weight_decay)
    rng = np.random.default_rng([trainer.settings.seed, 3])
    single = settings.batch_size - settings.whole_studies * pool.slices  # rows drawn one slice at a time
    if single < 0:
        raise ValueError(f"{settings.whole_studies} whole studies need a batch of at least "
                         f"{settings.whole_studies * pool.slices} slices, not {settings.batch_size}")
    focal_count = int(round(single * settings.focal_share)) if len(pool.focal) else 0
    history, start = [], time.perf_counter()
    encoder.train()
    for step in range(settings.steps):
        elapsed = (time.perf_counter() - start) / 60
        progress = step / settings.steps
        if settings.max_minutes:
            progress = max(progress, elapsed / settings.max_minutes)
        if progress >= 1.0:
            break
        # the encoder waits `probe_steps` (a trained encoder is not pushed around by untrained heads),
        # then warms up like the heads did
        encoder_step = step - settings.probe_steps
        optimiser.param_groups[0]["lr"] = (settings.lr * lr_factor(encoder_step, settings.warmup_steps, progress)
                                           if encoder_step >= 0 else 0.0)
        optimiser.param_groups[1]["lr"] = settings.lr * lr_factor(step, settings.warmup_steps, progress)
        rows = np.concatenate([rng.choice(pool.focal, size=focal_count),
                               rng.integers(0, len(pool), size=single - focal_count)])
        batch = pool.batch(rows, rng, settings.paste_share)
        if settings.whole_studies:
            whole = pool.study_batch(rng.integers(0, len(pool.studies), size=settings.whole_studies), rng,
                                     settings.study_paste)
            batch = {key: torch.cat([batch[key], whole[key]]) for key in batch}
        losses = pretrain_losses(trainer, probe, batch, settings)
        history.append(apply_update(optimiser, losses, params))
        if (step + 1) % 25 == 0:
            log(f"slice pretrain step {step + 1}/{settings.steps} {format_losses(recent_means(history, 25))} "
                f"{time.perf_counter() - start:.0f}s")
    encoder.eval()
    trainer.pretrain = {
        "steps": len(history), "batch_size": settings.batch_size, "lr": settings.lr,
        "focal_share": settings.focal_share, "paste_share": settings.paste_share, "studies": len(pool.studies), "slices": len(pool),
        "whole_studies": settings.whole_studies, "study_weight": settings.study_weight,
        "study_paste": settings.study_paste, "probe_steps": settings.probe_steps,
        "seconds": round(time.perf_counter() - start, 1),
        "final": recent_means(history, 50),
    }
    return history
