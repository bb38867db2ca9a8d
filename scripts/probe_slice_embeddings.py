"""How much study-level nodule information do a training run's slice embeddings carry?

    python scripts/probe_slice_embeddings.py WORK CASES

WORK is a `medmpt train --work` folder after stage two (its study cache and
`slice-embeddings-CASES-step0.pt`). A linear probe (and a one-hidden-layer one) learns, on the
first 90 % of the studies, whether each sampled slice holds a nodule (the phantoms' ground
truth); on the other 10 % it prints the per-slice AUC and the study-level AUC of the maximum
over a study's 32 slices (nodule present or not), the latter again for nodules of 10 mm or more,
the linear probe's slice AUC by how wide the nodule is on the slice and by its subtype (pixels at 224 x 224, from
the phantom's per-slice box) against the slices without one, and how many nodule-free slices
and studies fire at the threshold that finds half of the nodules 5 pixels or wider. When the
folder's checkpoint has run stage two, it also prints that model's nodule-head AUC on the studies
it trained on (against the held-out figure of `medmpt eval`: how much it learnt by heart). Needs
the 'train' extra (torch). An analysis tool: nothing in the product imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from models.train.bundle import load_checkpoint
from models.train.data import StudyCache, training_seeds
from models.train.evaluate import largest_nodule_mm
from models.train.metrics import roc_auc
from models.train.slice_pretrain import SLICE_LABELS, slice_labels


def probe(x: torch.Tensor, y: torch.Tensor, hidden: int, steps: int = 1500, batch: int = 4096,
          lr: float | None = None) -> torch.nn.Module:
    """A linear (hidden 0) or one-hidden-layer probe of binary labels `y` from rows of `x` (cast
    to float32: fp16 inputs keep large sets in memory), positives weighted as often as negatives."""
    head = (torch.nn.Linear(x.shape[-1], 1) if not hidden else
            torch.nn.Sequential(torch.nn.Linear(x.shape[-1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)))
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr or (3e-3 if hidden else 1e-2), weight_decay=1e-2)
    balance = (y.numel() - y.sum()) / y.sum().clamp(min=1)
    for _ in range(steps):
        rows = torch.randint(0, x.shape[0], (batch,))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x[rows].float()).squeeze(-1), y[rows],
                                                                   pos_weight=balance)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return head


def _widths(record, column_count: int) -> np.ndarray:
    """(S,) width in pixels at 224 x 224 of the widest nodule on each sampled slice (0: none)."""
    sampled = np.asarray(record.original_indices)
    widths = np.zeros(column_count, dtype=np.float32)
    for finding in record.findings:
        if finding["type"] == "nodule":
            for index, x0, y0, x1, y1 in finding.get("slice_boxes") or []:
                here = sampled == index
                widths[here] = np.maximum(widths[here], max(x1 - x0, y1 - y0) * 224 / record.size)
    return widths


def _subtypes(record, column_count: int) -> np.ndarray:
    """(S,) subtype ("solid", "part-solid", "ground-glass") of the widest nodule on each sampled
    slice ("" where there is none)."""
    sampled = np.asarray(record.original_indices)
    widths = np.zeros(column_count, dtype=np.float32)
    kinds = np.full(column_count, "", dtype=object)
    for finding in record.findings:
        if finding["type"] == "nodule":
            for index, x0, y0, x1, y1 in finding.get("slice_boxes") or []:
                width = max(x1 - x0, y1 - y0) * 224 / record.size
                here = (sampled == index) & (width > widths)
                widths[here], kinds[here] = width, finding.get("subtype", "")
    return kinds


def print_nodule_widths(records) -> None:
    """How wide each size class of nodule is at the model's input, on its widest sampled slice."""
    widest: dict[tuple[int, int], list[float]] = {}
    for record in records:
        sampled = set(record.original_indices)
        for finding in record.findings:
            if finding["type"] != "nodule":
                continue
            width = max([max(x1 - x0, y1 - y0) * 224 / record.size
                         for index, x0, y0, x1, y1 in finding.get("slice_boxes") or [] if index in sampled] or [0.0])
            for low, high in ((4, 6), (6, 10), (10, 15), (15, 31)):
                if low <= (finding.get("size_mm") or 0) < high:
                    widest.setdefault((low, high), []).append(width)
    for (low, high), widths in sorted(widest.items()):
        print(f"nodules {low}-{high} mm (n={len(widths)}): widest on a sampled slice at 224 x 224, median "
              f"{np.median(widths):.1f} px; 5 px or wider {np.mean(np.asarray(widths) >= 5):.0%}")


def main(work: Path, cases: int) -> None:
    torch.manual_seed(0)
    embeddings = torch.load(work / f"slice-embeddings-{cases}-step0.pt").float()  # (N, 32, D)
    records = sorted(StudyCache(work / "cache", training_seeds(cases, 0)).records(), key=lambda r: r.index)
    if len(records) != embeddings.shape[0]:
        raise SystemExit(f"{len(records)} cached studies but {embeddings.shape[0]} embedded ones")
    column = SLICE_LABELS.index("nodule")
    slices = torch.tensor(np.stack([slice_labels(r)[0][:, column] for r in records]))  # (N, 32)
    study = np.array([int(r.nodule > 0) for r in records])
    largest = np.array([largest_nodule_mm(r.findings) for r in records])
    print_nodule_widths(records)
    memorised = stage_two_training_auc(work, embeddings, study)
    if memorised is not None:
        print(f"stage two's nodule head on its {len(records)} training studies: AUC {memorised:.3f}")
    split = int(0.9 * len(records))
    flat = embeddings[:split].reshape(-1, embeddings.shape[-1])
    x = (embeddings - flat.mean(0)) / (flat.std(0) + 1e-6)
    held = np.arange(split, len(records))
    big = held[(study[held] == 0) | (largest[held] >= 10)]
    for hidden in (0, 64):
        head = probe(x[:split].reshape(-1, x.shape[-1]), slices[:split].reshape(-1), hidden)
        with torch.no_grad():
            scores = head(x).squeeze(-1).numpy()  # (N, 32)
        print(f"{'linear' if not hidden else f'{hidden} hidden'} probe on {len(held)} held-out studies: "
              f"slice AUC {roc_auc(scores[held].ravel(), slices[held].numpy().ravel().astype(int)):.3f}, "
              f"study AUC (max over slices) {roc_auc(scores[held].max(1), study[held]):.3f}, "
              f"nodules >= 10 mm vs none {roc_auc(scores[big].max(1), study[big]):.3f} "
              f"({int(study[big].sum())} of {len(big)} with a nodule)")
        if not hidden:
            widths = np.stack([_widths(r, embeddings.shape[1]) for r in records])[held].ravel()
            truth, score = slices[held].numpy().ravel(), scores[held].ravel()
            for low, high in ((0, 3), (3, 5), (5, 8), (8, 1000)):
                chosen = (truth == 0) | ((widths >= low) & (widths < high))
                span = f"{low}-{high}" if high < 1000 else f"{low} or more"
                print(f"   slices with a nodule {span} px wide (n={int((chosen & (truth == 1)).sum())}) "
                      f"against slices without: AUC {roc_auc(score[chosen], truth[chosen].astype(int)):.3f}")
            kinds = np.concatenate([_subtypes(records[k], embeddings.shape[1]) for k in held])
            for kind in sorted({k for k in kinds if k}):
                chosen = (truth == 0) | ((kinds == kind) & (widths >= 5))
                found = roc_auc(score[chosen], truth[chosen].astype(int))  # None: no such slice held out
                print(f"   slices with a {kind} nodule 5 px or wider (n={int((chosen & (truth == 1)).sum())}) "
                      f"against slices without: AUC {'n/a' if found is None else f'{found:.3f}'}")
            visible = (truth == 1) & (widths >= 5)
            threshold = np.median(score[visible])  # finds half of the nodules 5 px or wider
            empty = [k for k in held if study[k] == 0]
            print(f"   at the threshold finding half of those 5 px or wider: {np.mean(score[truth == 0] > threshold):.0%} "
                  f"of nodule-free slices and {np.mean([(scores[k] > threshold).any() for k in empty]):.0%} "
                  "of nodule-free studies fire")


def stage_two_training_auc(work: Path, embeddings: torch.Tensor, study: np.ndarray) -> float | None:
    """The folder's stage-two nodule head's AUC on its own training studies (None before stage two)."""
    if not (work / "checkpoint.pt").exists():
        return None
    model, _, state = load_checkpoint(work / "checkpoint.pt")
    if not state.get("finetune"):
        return None
    with torch.no_grad():
        scan, _ = model.vision_fusion_q(embeddings)
        present = torch.softmax(model.diagnosis_heads["nodule"](scan), dim=-1)[:, 1]
    return roc_auc(present.numpy(), study)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), int(sys.argv[2]))
