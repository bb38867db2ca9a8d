"""The published decoding algorithm in torch: full-prefix recompute at every step, no KV cache.

Beam search (reference section 4): start from BOS, score = sum of log-probabilities, no length
penalty, the previous token's log-probability set to -10000, a beam stops at EOS. Each step
keeps the best `beams` non-EOS continuations among the 2 x `beams` best candidates; an EOS
candidate ranked within the first `beams` finishes a hypothesis. Used as the baseline in
`medmpt bench infer` and as the reference in parity tests. Must not import app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.medmpt.model import MedMPTReportModel

REPEAT_LOGPROB = -10000.0


@dataclass
class Beam:
    tokens: list[int]
    score: float


def next_logprobs(model: MedMPTReportModel, prefixes: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next token for each full prefix (B, T) -> (B, V)."""
    logits = model.text_decoder(prefixes, memory.expand(prefixes.shape[0], -1, -1)).logits
    return torch.log_softmax(logits[:, -1].double(), dim=-1)


@torch.no_grad()
def greedy_full_prefix(model: MedMPTReportModel, memory: torch.Tensor, bos: int, steps: int,
                       eos: int | None = None) -> list[int]:
    """Greedy tokens for one scan (memory (1, S, D)); stops at `eos` if given."""
    tokens = [bos]
    for _ in range(steps):
        prefix = torch.tensor([tokens], device=memory.device)
        token = int(next_logprobs(model, prefix, memory)[0].argmax())
        tokens.append(token)
        if token == eos:
            break
    return tokens[1:]


@torch.no_grad()
def beam_full_prefix(model: MedMPTReportModel, memory: torch.Tensor, bos: int, eos: int,
                     beams: int = 2, max_steps: int = 120) -> tuple[list[int], int]:
    """Best hypothesis (EOS excluded) and the number of steps run, for memory (1, S, D)."""
    alive, finished = [Beam([bos], 0.0)], []
    steps = 0
    while steps < max_steps and alive:
        prefixes = torch.tensor([beam.tokens for beam in alive], device=memory.device)
        logprobs = next_logprobs(model, prefixes, memory)
        logprobs[torch.arange(len(alive), device=memory.device), prefixes[:, -1]] = REPEAT_LOGPROB
        scores = torch.tensor([beam.score for beam in alive], dtype=torch.float64, device=memory.device)
        totals = logprobs + scores[:, None]
        alive, done = _select(alive, totals, eos, beams)
        finished += done
        steps += 1
        if finished and (not alive or max(b.score for b in finished) >= max(b.score for b in alive)):
            break
    best = max(finished + alive, key=lambda beam: beam.score)
    tokens = best.tokens[1:]
    return (tokens[:-1] if tokens and tokens[-1] == eos else tokens), steps


def _select(alive: list[Beam], totals: torch.Tensor, eos: int, beams: int) -> tuple[list[Beam], list[Beam]]:
    vocab = totals.shape[1]
    values, indices = totals.flatten().topk(min(2 * beams, totals.numel()))
    next_alive, done = [], []
    for rank, (value, index) in enumerate(zip(values.tolist(), indices.tolist(), strict=True)):
        parent, token = divmod(index, vocab)
        child = Beam(alive[parent].tokens + [token], value)
        if token == eos:
            if rank < beams:
                done.append(child)
            continue
        next_alive.append(child)
        if len(next_alive) == beams:
            break
    return next_alive, done
