"""Second training stage: the slice encoder frozen, everything after it trained on cached slices.

The ViT over 32 slices x 224 x 224 is nearly all of a step's cost; once it has learnt (stage
one, end to end), its per-slice embeddings are computed once per study and the slice fusion,
vision-to-text projection, report decoder and diagnosis heads train for many more passes on
them at a small fraction of the cost, with the same report, diagnosis and slice-attention
losses (the patch rollout depends only on the frozen encoder). With a `slice_label_weight`, a
training-only linear head also reads each fused slice token and learns that slice's phantom
ground truth (models.train.slice_pretrain.SLICE_LABELS: nodule and its side, opacity, effusion
side, ...), so the 32 tokens the decoder attends to keep what each slice holds instead of
washing a one-slice nodule out into the scan. Must not import app or ui.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from models.train.config import TrainSettings
from models.train.data import StudyRecord
from models.train.loop import Trainer, format_losses, lr_factor, recent_means
from models.train.slice_pretrain import SLICE_LABELS, slice_labels
from models.train.step import apply_update, losses_of, make_batch

TERMS = ("text", "diagnosis", "slices")
MAX_POS_WEIGHT = 20.0  # of the rarest slice label (a nodule is on about 1 slice in 40)


def label_pos_weight(labels: np.ndarray) -> torch.Tensor:
    """(L,) BCE positive weights: negatives over positives per label, capped at MAX_POS_WEIGHT."""
    flat = labels.reshape(-1, labels.shape[-1])
    positives = flat.sum(0)
    return torch.from_numpy(np.clip((len(flat) - positives) / np.maximum(positives, 1.0), 1.0, MAX_POS_WEIGHT)).float()


def study_slice_labels(records: list[StudyRecord]) -> np.ndarray:
    """(N, S, L) float ground-truth labels of every sampled slice of the given studies."""
    return np.stack([slice_labels(record)[0] for record in records])


@torch.no_grad()
def slice_embeddings(trainer: Trainer, indices: list[int], batch: int = 4,
                     log: Callable[[str], None] = print) -> torch.Tensor:
    """(N, S, Dv) final-normed CLS embeddings of every slice of the given cached studies."""
    model = trainer.model.eval()
    out = []
    for first in range(0, len(indices), batch):
        chosen = indices[first : first + batch]
        pixels = trainer.batch_of(chosen).pixels
        flat = pixels.reshape(-1, *pixels.shape[2:])
        embedded, _ = model.vision_encoder_q(flat)
        out.append(embedded.reshape(len(chosen), pixels.shape[1], -1))
        if first % 200 == 0:
            log(f"embedded {first + len(chosen)}/{len(indices)} studies")
    return torch.cat(out)


def finetune(trainer: Trainer, steps: int, batch_size: int = 32, lr: float = 5e-4,
             slice_label_weight: float = 0.0, dropout: float | None = None,
             log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Train everything but the slice encoder for `steps` steps on cached slice embeddings
    (plus, with `slice_label_weight` > 0, the fused slice tokens' ground-truth slice labels).

    `dropout` replaces the model's dropout probability during this stage only (every step sees
    the same frozen embeddings of each study, dozens of times over: dropout keeps the fusion and
    decoder from learning them by heart); the exported model runs without dropout either way.
    """
    settings: TrainSettings = trainer.settings
    indices = sorted(trainer._available())
    embedding_path = trainer.work / f"slice-embeddings-{len(indices)}-step{trainer.step}.pt"
    if embedding_path.exists():
        embeddings = torch.load(embedding_path)
    else:
        embeddings = slice_embeddings(trainer, indices, log=log)
        torch.save(embeddings, embedding_path)
    model = trainer.model
    dropouts = {module: module.p for module in model.modules() if isinstance(module, torch.nn.Dropout)}
    if dropout is not None:
        for module in dropouts:
            module.p = dropout
    params = [p for n, p in model.named_parameters() if not n.startswith("vision_encoder_q.")]
    terms = TERMS
    if slice_label_weight > 0:
        terms = (*TERMS, "slice_labels")
        labels = study_slice_labels([trainer.records[i] for i in indices])  # (N, S, L)
        truth, pos_weight = torch.from_numpy(labels), label_pos_weight(labels)
        label_head = torch.nn.Linear(model.config.vision_width, len(SLICE_LABELS))  # training only
        params = [*params, *label_head.parameters()]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=settings.weight_decay)
    rng = np.random.default_rng([settings.seed, 2])
    history, start = [], time.perf_counter()
    for step in range(steps):
        for group in optimiser.param_groups:
            group["lr"] = lr * lr_factor(step, 50, step / steps)
        rows = rng.choice(len(indices), size=min(batch_size, len(indices)), replace=False)
        chosen = [indices[r] for r in rows]
        batch = make_batch(None, [trainer.records[i] for i in chosen], [trainer._targets(i) for i in chosen],
                           model.config.pad_token_id)
        model.train()
        model.vision_encoder_q.eval()
        scan, tokens = model.vision_fusion_q(embeddings[torch.as_tensor(rows)])
        out = {"memory": model.vision_to_text(tokens),
               "diagnosis_logits": {name: head(scan) for name, head in model.diagnosis_heads.items()}}
        losses = losses_of(model, out, batch, settings)
        if slice_label_weight > 0:
            losses["slice_labels"] = torch.nn.functional.binary_cross_entropy_with_logits(
                label_head(tokens), truth[torch.as_tensor(rows)], pos_weight=pos_weight)
            losses["loss"] = losses["loss"] + slice_label_weight * losses["slice_labels"]
        history.append(apply_update(optimiser, losses, params))
        if (step + 1) % 50 == 0:
            log(f"finetune step {step + 1}/{steps} {format_losses(recent_means(history, 50, terms))} "
                f"{time.perf_counter() - start:.0f}s")
    model.eval()
    for module, p in dropouts.items():  # the configuration's own dropout again
        module.p = p
    trainer.finetune = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "studies": len(indices),
        "slice_label_weight": slice_label_weight, "dropout": dropout,
        "seconds": round(time.perf_counter() - start, 1), "after_stage_one_step": trainer.step,
        "final": recent_means(history, 50, terms),
    }
    return history
