"""Do a package's slice-encoder patch tokens tell studies with a nodule better than its CLS does?

    python scripts/probe_patch_tokens.py WORK PACKAGE STUDIES

WORK is a `medmpt train --work` folder whose study cache holds the rendered training phantoms
(3000 of seed 0); PACKAGE the model package whose slice encoder is probed (read back from its
verified vision graph, as `medmpt train --slice-encoder` does). The first STUDIES cached studies
are embedded (CLS and the patch tokens of all 32 slices); probes learn on the first 90 %: one on
the CLS (does the slice hold a nodule), one on each patch token (does the patch lie in a nodule's
box, the phantoms' per-slice boxes). On the other 10 % it prints, for each, the study-level AUC of
the maximum over the study (nodule present or not; again for nodules of 10 mm or more), and for
the patch probe its patch-level AUC. Needs the 'train' extra (torch); an analysis tool, nothing
in the product imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from probe_slice_embeddings import probe  # scripts/ is the script's own folder on sys.path

from models.medmpt.model import build_model
from models.train.config import phantom_config
from models.train.data import StudyCache, grey_to_pixels, input_grey, training_seeds
from models.train.encoder_from_package import load_slice_encoder
from models.train.evaluate import largest_nodule_mm
from models.train.metrics import roc_auc
from models.train.slice_pretrain import SLICE_LABELS, slice_labels
from models.train.targets import patch_targets


def main(work: Path, package: Path, count: int) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    cache = StudyCache(work / "cache", training_seeds(3000, 0))
    records = sorted(cache.records(), key=lambda r: r.index)[:count]
    model = build_model(phantom_config(1, 16, 64), 0)
    load_slice_encoder(model, package)
    encoder = model.vision_encoder_q.eval()
    cls, patches = [], []
    with torch.no_grad():
        for record in records:
            grey = input_grey(np.array(cache.pixels[record.index]), model.config.input_channels)
            tokens, _ = encoder.all_tokens(grey_to_pixels(torch.from_numpy(grey)))
            cls.append(tokens[:, 0])
            patches.append(tokens[:, 1:].half())  # (32, P, D): fp16 keeps 1,000 studies in about 1 GB
    cls, patches = torch.stack(cls), torch.stack(patches)
    grid = model.config.grid
    slices = torch.tensor(np.stack([slice_labels(r)[0][:, SLICE_LABELS.index("nodule")] for r in records]))
    boxes = torch.tensor(np.stack([
        patch_targets([f for f in r.findings if f["type"] == "nodule"], r.original_indices, r.size, grid)[0]
        for r in records])).reshape(len(records), slices.shape[1], -1)
    study = np.array([int(r.nodule > 0) for r in records])
    largest = np.array([largest_nodule_mm(r.findings) for r in records])
    split = int(0.9 * len(records))
    held = np.arange(split, len(records))
    big = held[(study[held] == 0) | (largest[held] >= 10)]
    width = cls.shape[-1]

    def report(name: str, scores: np.ndarray) -> None:  # scores (N, 32): per slice
        print(f"{name}: study AUC {roc_auc(scores[held].max(1), study[held]):.3f}, "
              f"nodules >= 10 mm vs none {roc_auc(scores[big].max(1), study[big]):.3f}", flush=True)

    for hidden in (0, 64):
        head = probe(cls[:split].reshape(-1, width), slices[:split].reshape(-1), hidden, 2000, 8192, 3e-3)
        with torch.no_grad():
            report(f"CLS, {'linear' if not hidden else f'{hidden} hidden'}", head(cls).squeeze(-1).numpy())
        head = probe(patches[:split].reshape(-1, width), boxes[:split].reshape(-1), hidden, 2000, 8192, 3e-3)
        with torch.no_grad():
            scores = torch.cat([head(patches[i : i + 50].float()).squeeze(-1) for i in range(0, len(records), 50)])
        report(f"patch tokens (max over the study's patches), {'linear' if not hidden else f'{hidden} hidden'}",
               scores.max(-1).values.numpy())
        print(f"   patch AUC {roc_auc(scores[held].numpy().ravel(), boxes[held].numpy().ravel().astype(int)):.3f}")
    print(f"{len(held)} held-out studies ({int(study[held].sum())} with a nodule), {split} for the probes")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
