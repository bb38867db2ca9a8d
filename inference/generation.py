"""Report decoding: beam search (and greedy, beam 1) over any step function with a KV cache.

Beam search as the reference specifies: start from BOS; score = sum of log-probabilities, no
length penalty; at each step the log-probability of each beam's previous token is set to
-10000 (no immediate repetition); a beam stops at EOS; at most `max_steps` tokens. Each step
keeps the best `beams` non-EOS continuations among the 2 x `beams` best candidates; an EOS
candidate ranking within the first `beams` becomes a finished hypothesis. Decoding stops when
the best finished hypothesis scores at least as well as every live beam (scores only fall, so
nothing can beat it), when no beam is left, or after `max_steps`.
For every generated token the decoder's cross-attention over the 32 slices at the step that
produced it is kept (layers, 32) and follows the beam through reordering.
A step function that gives each beam's best few log-probabilities itself (`TopStepFunction`,
the fixed-shape decoder graph on the GPU) is searched on those alone; the choice is the same.
Numpy only: must not import onnxruntime, app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from inference.cancel import is_cancelled
from inference.errors import CancelledError

REPEAT_PENALTY_LOGPROB = -10000.0


class StepFunction(Protocol):
    """One decoder step with its own cache (e.g. ONNX KV cache)."""

    def reset(self) -> None:
        """Forget the cache: the next step starts a new sequence after BOS."""

    def step(self, input_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Feed (B, 1) token ids; return logits (B, V) and cross-attention (B, L, S) or None."""

    def reorder(self, index: np.ndarray) -> None:
        """Keep cache rows `index` (beam i of the next step continues beam index[i])."""


class TopStepFunction(StepFunction, Protocol):
    """A step function that can also give each beam's `top_k` best log-probabilities and their
    token ids, best first (computed on the device: the host never reads the B x V logits)."""

    top_k: int

    def step_top(self, input_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Feed (B, 1) token ids; return log-probabilities (B, K), token ids (B, K), cross-attention."""


@dataclass(frozen=True)
class DecodeProgress:
    """Yielded after each generated token: step count and the current best tokens."""

    step: int
    max_steps: int
    tokens: tuple[int, ...]


@dataclass
class Hypothesis:
    tokens: list[int]
    score: float
    attention: list[np.ndarray] = field(default_factory=list)
    finished: bool = False


@dataclass(frozen=True)
class DecodeResult:
    """The chosen hypothesis: tokens (BOS and EOS excluded), score, attention (L, T, S)."""

    tokens: tuple[int, ...]
    score: float
    cross_attention: np.ndarray | None
    ended_with_eos: bool
    steps: int


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def beam_search(
    step_fn: StepFunction, bos: int, eos: int, beams: int = 2, max_steps: int = 120,
    no_repeat_previous: bool = True, cancel: Any = None,
) -> Generator[DecodeProgress, None, DecodeResult]:
    """Decode with `beams` beams (1 = greedy); yields progress per token, returns the best."""
    if beams < 1 or max_steps < 1:
        raise ValueError("beams and max_steps must be at least 1")
    step_fn.reset()
    # Each beam's 2 x beams best tokens hold the step's 2 x beams best candidates, and one more
    # stands in for the previous token when that is barred.
    use_top = getattr(step_fn, "top_k", 0) >= 2 * beams + int(no_repeat_previous)
    alive = [Hypothesis([], 0.0)]
    finished: list[Hypothesis] = []
    last = np.array([bos], dtype=np.int64)
    steps = 0
    while steps < max_steps and alive:
        if is_cancelled(cancel):
            raise CancelledError("report drafting cancelled", tokens_generated=steps)
        if use_top:
            logprobs, tokens, cross = step_fn.step_top(last[:, None])  # type: ignore[attr-defined]
            logprobs = np.asarray(logprobs, dtype=np.float64)
        else:
            logits, cross = step_fn.step(last[:, None])
            logprobs = log_softmax(logits)
            tokens = None
        if no_repeat_previous:
            if tokens is None:
                logprobs[np.arange(len(alive)), last] = REPEAT_PENALTY_LOGPROB
            else:
                logprobs[tokens == last[:, None]] = REPEAT_PENALTY_LOGPROB
        candidates = _candidates(alive, logprobs, tokens, beams)
        alive, parents, newly_finished = _select(alive, candidates, cross, eos, beams)
        finished.extend(newly_finished)
        steps += 1
        if alive:
            step_fn.reorder(np.asarray(parents, dtype=np.int64))
            last = np.array([h.tokens[-1] for h in alive], dtype=np.int64)
        best_now = max(finished + alive, key=lambda h: h.score)
        yield DecodeProgress(steps, max_steps, tuple(t for t in best_now.tokens if t != eos))
        if finished and (not alive or max(h.score for h in finished) >= max(h.score for h in alive)):
            break
    return _result(max(finished + alive, key=lambda h: h.score), eos, steps)


def _candidates(alive: list[Hypothesis], logprobs: np.ndarray, tokens: np.ndarray | None,
                beams: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate continuations as (beam, token, total score) arrays. `logprobs` is (B, V) over the
    whole vocabulary (`tokens` None: only the 2 x `beams` best are kept), or (B, K) for the
    token ids in `tokens` (all kept)."""
    totals = logprobs + np.array([h.score for h in alive])[:, None]
    if tokens is not None:
        beam = np.repeat(np.arange(len(alive)), tokens.shape[1])
        return beam, tokens.ravel().astype(np.int64), totals.ravel()
    flat = totals.ravel()
    count = min(2 * beams, flat.size)
    top = np.argpartition(-flat, count - 1)[:count]
    beam, token = np.divmod(top, logprobs.shape[1])
    return beam, token, flat[top]


def _select(
    alive: list[Hypothesis], candidates: tuple[np.ndarray, np.ndarray, np.ndarray],
    cross: np.ndarray | None, eos: int, beams: int
) -> tuple[list[Hypothesis], list[int], list[Hypothesis]]:
    beam_of, token_of, total_of = candidates
    order = np.lexsort((token_of, beam_of, -total_of))[: 2 * beams]  # best first; ties -> lower beam, then lower id
    next_alive: list[Hypothesis] = []
    parents: list[int] = []
    done: list[Hypothesis] = []
    for rank, index in enumerate(order):
        beam, token = int(beam_of[index]), int(token_of[index])
        parent = alive[beam]
        row = [] if cross is None else [np.asarray(cross[beam], dtype=np.float32)]
        child = Hypothesis(parent.tokens + [token], float(total_of[index]), parent.attention + row)
        if token == eos:
            if rank < beams:
                child.finished = True
                done.append(child)
            continue
        next_alive.append(child)
        parents.append(beam)
        if len(next_alive) == beams:
            break
    return next_alive, parents, done


def _result(best: Hypothesis, eos: int, steps: int) -> DecodeResult:
    ended = bool(best.tokens) and best.tokens[-1] == eos
    tokens = best.tokens[:-1] if ended else best.tokens
    attention = best.attention[: len(tokens)]
    stacked = np.stack(attention, axis=1) if attention else None  # (L, T, S)
    return DecodeResult(tuple(tokens), best.score, stacked, ended, steps)
