"""Second training stage: the slice encoder frozen, everything after it trained on cached slices.

The ViT over 32 slices x 224 x 224 is nearly all of a step's cost; once it has learnt (stage
one, end to end), its per-slice embeddings are computed once per study and the slice fusion,
vision-to-text projection, report decoder and diagnosis heads train for many more passes on
them at a small fraction of the cost, with the same report, diagnosis and slice-attention
losses (the patch rollout depends only on the frozen encoder). Must not import app or ui.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from models.train.config import TrainSettings
from models.train.loop import Trainer, format_losses, lr_factor, recent_means
from models.train.step import apply_update, losses_of, make_batch

TERMS = ("text", "diagnosis", "slices")


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
             log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Train everything but the slice encoder for `steps` steps on cached slice embeddings."""
    settings: TrainSettings = trainer.settings
    indices = sorted(trainer._available())
    embedding_path = trainer.work / f"slice-embeddings-{len(indices)}-step{trainer.step}.pt"
    if embedding_path.exists():
        embeddings = torch.load(embedding_path)
    else:
        embeddings = slice_embeddings(trainer, indices, log=log)
        torch.save(embeddings, embedding_path)
    model = trainer.model
    params = [p for n, p in model.named_parameters() if not n.startswith("vision_encoder_q.")]
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
        history.append(apply_update(optimiser, losses, params))
        if (step + 1) % 50 == 0:
            log(f"finetune step {step + 1}/{steps} {format_losses(recent_means(history, 50, TERMS))} "
                f"{time.perf_counter() - start:.0f}s")
    model.eval()
    trainer.finetune = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "studies": len(indices),
        "seconds": round(time.perf_counter() - start, 1), "after_stage_one_step": trainer.step,
        "final": recent_means(history, 50, TERMS),
    }
    return history
