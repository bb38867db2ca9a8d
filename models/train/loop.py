"""The training loop: seeding, tokenizer, cache, AdamW with warm-up + cosine, checkpoints.

Must not import app or ui.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from models.medmpt.model import MedMPTReportModel, build_model
from models.phantoms.corpus import report_corpus
from models.train.config import TrainSettings, phantom_config
from models.train.data import StudyCache, StudyRecord, input_grey, training_seeds
from models.train.step import make_batch, train_step
from models.train.targets import StudyTargets, study_targets
from models.train.tokenizer import train_report_tokenizer

CORPUS_SIZE = 5_000


def seed_everything(seed: int, threads: int) -> None:
    """Seed python, numpy and torch; deterministic torch kernels; fixed thread count."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_tokenizer(seed: int) -> Tokenizer:
    """The report tokenizer, learnt from a seeded phantom report corpus."""
    return train_report_tokenizer(report_corpus(CORPUS_SIZE, seed))


def recent_means(history: list[dict[str, float]], count: int, keys: tuple[str, ...] | None = None) -> dict[str, float]:
    """Mean of each loss term over the last `count` steps ({} before the first step)."""
    recent = history[-count:]
    if not recent:
        return {}
    return {k: sum(h[k] for h in recent) / len(recent) for k in (keys or tuple(recent[0]))}


def format_losses(means: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in means.items())


def lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 5 % of the peak at progress 1."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max(0.0, progress))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Holds the model, optimiser, cache and memoised targets of one run."""

    def __init__(self, settings: TrainSettings, work_dir: Path, cache_dir: Path | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.settings, self.work, self.log = settings, Path(work_dir), log
        self.work.mkdir(parents=True, exist_ok=True)
        seed_everything(settings.seed, settings.threads)
        self.tokenizer = build_tokenizer(settings.seed)
        self.model: MedMPTReportModel = build_model(phantom_config(self.tokenizer.get_vocab_size(), settings.patch_size,
                                                                   settings.vision_width, settings.patch_stem,
                                                                   settings.input_channels),
                                                     settings.seed)
        self.cache = StudyCache(cache_dir or self.work / "cache", training_seeds(settings.cases, settings.seed))
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=settings.lr,
                                           weight_decay=settings.weight_decay)
        self.total_steps = math.ceil(settings.epochs * settings.cases / settings.batch_size)
        self.step = 0
        self.records: dict[int, StudyRecord] = {}
        self.targets: dict[int, StudyTargets] = {}
        self.history: list[dict[str, float]] = []
        self.resumed_seconds = 0.0
        self.command = ""
        self.finetune: dict = {}
        self.pretrain: dict = {}
        self.encoder_source: dict = {}  # set when the slice encoder came from a package
        self._resume()

    @property
    def checkpoint_path(self) -> Path:
        return self.work / "checkpoint.pt"

    def _resume(self) -> None:
        if not self.checkpoint_path.exists():
            return
        state = torch.load(self.checkpoint_path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.step, self.history = state["step"], state.get("history", [])
        self.resumed_seconds = self.history[-1]["seconds"] if self.history else 0.0
        self.finetune = state.get("finetune") or {}
        self.pretrain = state.get("pretrain") or {}
        self.encoder_source = state.get("encoder_source") or {}
        self.log(f"resumed from {self.checkpoint_path} at step {self.step}")

    def save(self) -> None:
        state = {"model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
                 "step": self.step, "settings": asdict(self.settings), "history": self.history,
                 "tokenizer": self.tokenizer.to_str(), "config": asdict(self.model.config),
                 "command": self.command, "finetune": self.finetune, "pretrain": self.pretrain,
                 "encoder_source": self.encoder_source}
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def _available(self) -> list[int]:
        missing = [i for i in np.flatnonzero(self.cache.done) if i not in self.records]
        if missing:
            self.records.update({r.index: r for r in self.cache.records()})
        return [int(i) for i in np.flatnonzero(self.cache.done) if int(i) in self.records]

    def _targets(self, index: int) -> StudyTargets:
        if index not in self.targets:
            self.targets[index] = study_targets(self.records[index], self.tokenizer,
                                                self.model.config.grid, self.settings.max_tokens)
        return self.targets[index]

    def batch_of(self, indices: list[int]):
        indices = sorted(indices)  # memmap reads in file order
        channels = self.model.config.input_channels
        grey = np.stack([input_grey(np.asarray(self.cache.pixels[i]), channels) for i in indices])
        return make_batch(grey, [self.records[i] for i in indices],
                          [self._targets(i) for i in indices], self.model.config.pad_token_id)

    def progress(self, start: float) -> float:
        """Share of the run done: steps, or wall time when a budget is set (whichever is more)."""
        done = self.step / self.total_steps
        budget = self.settings.max_minutes
        if budget:
            done = max(done, (time.perf_counter() - start + self.resumed_seconds) / (60 * budget))
        return done

    def run(self) -> None:
        """Train to `total_steps` (or to the time budget), checkpointing as it goes."""
        s, start, epoch = self.settings, time.perf_counter(), 0
        for group in self.optimiser.param_groups:
            group.setdefault("initial_lr", s.lr)
        while self.step < self.total_steps:
            available = self._available()
            if len(available) < s.batch_size:
                time.sleep(5)
                continue
            order = np.random.default_rng([s.seed, epoch, len(available)]).permutation(available)
            for first in range(0, len(order) - s.batch_size + 1, s.batch_size):
                if self.progress(start) >= 1.0:
                    break
                self._one_step(order[first : first + s.batch_size].tolist(), start)
            epoch += 1
            if self.progress(start) >= 1.0:
                break
        self.log(f"finished at step {self.step} ({self.step * s.batch_size} study passes)")
        self.save()

    def _one_step(self, indices: list[int], start: float) -> None:
        s = self.settings
        for group in self.optimiser.param_groups:
            group["lr"] = s.lr * lr_factor(self.step, s.warmup_steps, self.progress(start))
        losses = train_step(self.model, self.optimiser, self.batch_of(indices), s)
        self.step += 1
        losses.update(step=self.step, seconds=round(time.perf_counter() - start + self.resumed_seconds, 1),
                      studies=len(self.records))
        self.history.append(losses)
        if self.step % 10 == 0 or self.step == 1:
            mean = recent_means(self.history, 10, ("loss", "text", "diagnosis", "slices", "patches"))
            self.log(f"step {self.step}/{self.total_steps} studies {len(self.records)} "
                     f"{format_losses(mean)} {losses['seconds']:.0f}s")
        if self.step % s.checkpoint_every == 0:
            self.save()


def fill_in_background(cache: StudyCache, workers: int) -> multiprocessing.Process:
    """Render the cache in another process (training reads studies as they appear)."""
    process = multiprocessing.get_context("fork").Process(target=cache.fill, args=(workers,), daemon=False)
    process.start()
    return process
