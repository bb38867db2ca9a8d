"""One training step of the phantom MedMPT: batch assembly, the losses, the optimiser update.

Losses: teacher-forced report LM cross-entropy; cross-entropy of the three diagnosis heads;
and two explanation losses on synthetic ground truth: the decoder's cross-attention (averaged
over layers and heads, as the runtime reads it) of each finding sentence's tokens should fall
on the sampled slices of that finding, and the slice encoder's attention rollout on a slice
holding a nodule or effusion should fall inside its box. Must not import app or ui.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from models.medmpt.model import MedMPTReportModel
from models.train.config import TrainSettings
from models.train.data import StudyRecord, grey_to_pixels
from models.train.targets import StudyTargets

EPS = 1e-6


@dataclass
class Batch:
    pixels: torch.Tensor | None  # (B, S, 3, H, W) float32; None when training on cached slice embeddings
    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T), -100 = ignored
    token_slices: torch.Tensor  # (B, T, S)
    token_supervised: torch.Tensor  # (B, T)
    patch_mask: torch.Tensor  # (B, S, G, G)
    patch_supervised: torch.Tensor  # (B, S)
    severity: torch.Tensor
    nodule: torch.Tensor
    effusion: torch.Tensor


def make_batch(grey: np.ndarray | None, records: list[StudyRecord], targets: list[StudyTargets], pad: int) -> Batch:
    """Stack uint8 grey studies (B, S, 3, H, W) (or None) and their targets into tensors."""
    width = max(len(t.ids) for t in targets) - 1
    b, s = len(targets), targets[0].token_slices.shape[1]
    ids = torch.full((b, width), pad, dtype=torch.long)
    labels = torch.full((b, width), -100, dtype=torch.long)
    token_slices = torch.zeros((b, width, s))
    supervised = torch.zeros((b, width), dtype=torch.bool)
    for i, t in enumerate(targets):
        n = len(t.ids) - 1
        ids[i, :n] = torch.tensor(t.ids[:-1])
        labels[i, :n] = torch.tensor(t.ids[1:])
        token_slices[i, :n] = torch.from_numpy(t.token_slices.astype(np.float32))
        supervised[i, :n] = torch.from_numpy(t.token_supervised)
    return Batch(
        pixels=None if grey is None else grey_to_pixels(torch.from_numpy(np.ascontiguousarray(grey))),
        input_ids=ids,
        labels=labels, token_slices=token_slices, token_supervised=supervised,
        patch_mask=torch.from_numpy(np.stack([t.patch_mask for t in targets])),
        patch_supervised=torch.from_numpy(np.stack([t.patch_supervised for t in targets])),
        severity=torch.tensor([r.severity for r in records]),
        nodule=torch.tensor([r.nodule for r in records]),
        effusion=torch.tensor([r.effusion for r in records]),
    )


def _mass_loss(distribution: torch.Tensor, mask: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Mean -log(probability mass inside `mask`) over the `chosen` rows (0 if none)."""
    if not bool(chosen.any()):
        return distribution.sum() * 0.0
    mass = (distribution * mask).flatten(start_dim=chosen.dim()).sum(-1)
    return -torch.log(mass[chosen] + EPS).mean()


def compute_losses(model: MedMPTReportModel, batch: Batch, settings: TrainSettings) -> dict[str, torch.Tensor]:
    """The loss terms and their weighted total (key 'loss')."""
    return losses_of(model, model.encode(batch.pixels), batch, settings)


def losses_of(model: MedMPTReportModel, out: dict, batch: Batch, settings: TrainSettings) -> dict[str, torch.Tensor]:
    """Loss terms from encoder outputs (`memory`, `diagnosis_logits`, optional `patch_relevance`)."""
    lm = model.text_decoder(batch.input_ids, out["memory"], output_attentions=True)
    text = F.cross_entropy(lm.logits.flatten(0, 1), batch.labels.flatten(), ignore_index=-100)
    logits = out["diagnosis_logits"]
    diagnosis = (F.cross_entropy(logits["covid_severity"], batch.severity)
                 + F.cross_entropy(logits["nodule"], batch.nodule)
                 + F.cross_entropy(logits["effusion"], batch.effusion))
    cross = torch.stack(lm.cross_attentions).mean(dim=(0, 2))  # (B, T, S)
    slices = _mass_loss(cross, batch.token_slices, batch.token_supervised)
    relevance = out.get("patch_relevance")
    patches = text * 0.0 if relevance is None else _mass_loss(relevance, batch.patch_mask, batch.patch_supervised)
    total = (text + settings.diag_weight * diagnosis + settings.slice_weight * slices
             + settings.patch_weight * patches)
    return {"loss": total, "text": text, "diagnosis": diagnosis, "slices": slices, "patches": patches}


def train_step(model: MedMPTReportModel, optimiser: torch.optim.Optimizer, batch: Batch,
               settings: TrainSettings) -> dict[str, float]:
    """One update; returns the loss terms as floats."""
    model.train()
    return apply_update(optimiser, compute_losses(model, batch, settings), model.parameters())


def apply_update(optimiser: torch.optim.Optimizer, losses: dict[str, torch.Tensor], params) -> dict[str, float]:
    """Back-propagate losses['loss'], clip the gradient norm of `params` to 1, step; the terms as floats."""
    optimiser.zero_grad(set_to_none=True)
    losses["loss"].backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimiser.step()
    return {name: float(value.detach()) for name, value in losses.items()}
