"""Beam search and greedy decoding against hand-made step functions with a fake KV cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from inference.errors import CancelledError
from inference.generation import beam_search, log_softmax

BOS, EOS, A, B, C = 2, 3, 4, 5, 6
VOCAB = 7


class TableScorer:
    """Next-token probabilities looked up from the whole history kept in a fake cache.

    Cross-attention is one-hot on slice (last input token % 4) in layer 0 and on slice
    (history length % 4) in layer 1, so tests can see which step and beam it came from.
    """

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], default: dict[int, float]):
        self.table, self.default = table, default
        self.histories: list[tuple[int, ...]] = []
        self.calls = 0

    def reset(self) -> None:
        self.histories = [()]

    def step(self, input_ids: np.ndarray):
        self.calls += 1
        assert input_ids.shape == (len(self.histories), 1)
        self.histories = [h + (int(t),) for h, t in zip(self.histories, input_ids[:, 0], strict=True)]
        logits = np.full((len(self.histories), VOCAB), -30.0)
        cross = np.zeros((len(self.histories), 2, 4))
        for row, history in enumerate(self.histories):
            for token, p in self.table.get(history, self.default).items():
                logits[row, token] = np.log(p)
            cross[row, 0, history[-1] % 4] = 1.0
            cross[row, 1, len(history) % 4] = 1.0
        return logits, cross

    def reorder(self, index: np.ndarray) -> None:
        self.histories = [self.histories[i] for i in index]


def _run(task):
    steps = []
    while True:
        try:
            steps.append(next(task))
        except StopIteration as stop:
            return stop.value, steps


# Greedy takes A (0.5) then can only end with p 0.35: total 0.175.
# Beam 2 also keeps B (0.4), which ends with p 0.95: total 0.38, the better report.
TABLE = {
    (BOS,): {A: 0.5, B: 0.4, C: 0.1},
    (BOS, A): {EOS: 0.35, C: 0.33, B: 0.32},
    (BOS, B): {EOS: 0.95, C: 0.05},
    (BOS, A, C): {EOS: 0.2, B: 0.8},
}
DEFAULT = {EOS: 0.9, C: 0.1}


def test_beam_finds_the_better_sequence_greedy_misses() -> None:
    greedy, _ = _run(beam_search(TableScorer(TABLE, DEFAULT), BOS, EOS, beams=1))
    beam, _ = _run(beam_search(TableScorer(TABLE, DEFAULT), BOS, EOS, beams=2))
    assert greedy.tokens == (A,)
    assert beam.tokens == (B,)
    assert beam.ended_with_eos and greedy.ended_with_eos
    assert beam.score == pytest.approx(np.log(0.4 * 0.95))
    assert greedy.score == pytest.approx(np.log(0.5 * 0.35))


def test_previous_token_is_never_repeated() -> None:
    table = {(BOS,): {A: 1.0}}
    scorer = TableScorer(table, {A: 0.6, C: 0.39, EOS: 0.01})  # A would repeat forever
    result, _ = _run(beam_search(scorer, BOS, EOS, beams=2, max_steps=4))
    assert result.tokens == (A, C, A, C)


def test_stops_after_max_steps_without_eos() -> None:
    scorer = TableScorer({}, {A: 0.5, C: 0.5})
    result, steps = _run(beam_search(scorer, BOS, EOS, beams=2, max_steps=7))
    assert len(result.tokens) == 7 and not result.ended_with_eos
    assert [s.step for s in steps] == list(range(1, 8))


def test_kv_cache_is_reordered_with_the_beams() -> None:
    # After BOS, beam order is (A, B); at step 2 both best children come from B, so the
    # cache rows must follow B or the table lookups (keyed by full history) go wrong.
    table = {
        (BOS,): {A: 0.55, B: 0.45},
        (BOS, A): {C: 0.25, EOS: 0.25, B: 0.25, 0: 0.25},
        (BOS, B): {C: 0.5, A: 0.45, EOS: 0.05},
        (BOS, B, C): {EOS: 0.9, A: 0.1},
        (BOS, B, A): {EOS: 0.2, C: 0.8},
    }
    scorer = TableScorer(table, {EOS: 0.5, C: 0.5})
    result, _ = _run(beam_search(scorer, BOS, EOS, beams=2))
    assert result.tokens == (B, C)
    assert result.score == pytest.approx(np.log(0.45 * 0.5 * 0.9))


def test_cross_attention_follows_the_chosen_beam() -> None:
    result, _ = _run(beam_search(TableScorer(TABLE, DEFAULT), BOS, EOS, beams=2))
    attention = result.cross_attention  # (L, T, S) for the chosen tokens (B,), EOS excluded
    assert attention.shape == (2, 1, 4)
    # token B was produced at the step whose input was BOS (history length 1)
    assert np.argmax(attention[0, 0]) == BOS % 4 and np.argmax(attention[1, 0]) == 1
    longer, _ = _run(beam_search(TableScorer({}, {C: 0.5, A: 0.3, B: 0.2}), BOS, EOS, beams=2, max_steps=5))
    assert len(longer.tokens) == 5
    inputs = (BOS,) + longer.tokens[:-1]
    assert [int(np.argmax(longer.cross_attention[0, t])) for t in range(5)] == [t % 4 for t in inputs]
    assert [int(np.argmax(longer.cross_attention[1, t])) for t in range(5)] == [(t + 1) % 4 for t in range(5)]


@pytest.mark.parametrize("k", [1, 3, 6])
def test_cancel_from_progress_stops_within_one_token(k: int) -> None:
    scorer = TableScorer({}, {A: 0.5, C: 0.5})
    cancel = threading.Event()
    task = beam_search(scorer, BOS, EOS, beams=2, max_steps=50, cancel=cancel)
    seen = 0
    with pytest.raises(CancelledError) as caught:
        for progress in task:
            seen = progress.step
            if progress.step == k:
                cancel.set()
    assert seen == k
    assert caught.value.tokens_generated <= k + 1
    assert scorer.calls <= k + 1


def test_object_with_cancelled_attribute_is_a_cancel_token() -> None:
    class Token:
        cancelled = True

    with pytest.raises(CancelledError):
        _run(beam_search(TableScorer({}, DEFAULT), BOS, EOS, cancel=Token()))


class RandomScorer:
    """Random logits over a 60-token vocabulary that depend on the whole history (kept in a fake
    cache), with each beam's previous token often the most likely (so the bar on repeats
    matters); `top_k` > 0 also offers the device-side search's best log-probabilities."""

    def __init__(self, top_k: int = 0, seed: int = 0):
        self.top_k, self.seed = top_k, seed
        self.histories: list[tuple[int, ...]] = []
        self.full_calls = self.top_calls = 0

    def reset(self) -> None:
        self.histories = [()]

    def _logits(self, input_ids: np.ndarray) -> np.ndarray:
        self.histories = [h + (int(t),) for h, t in zip(self.histories, input_ids[:, 0], strict=True)]
        rows = []
        for history in self.histories:
            rng = np.random.default_rng([self.seed, *history])
            row = rng.normal(0.0, 2.0, 60)
            row[EOS] -= 6.0 if len(history) < 12 else 0.0
            if rng.random() < 0.5:
                row[history[-1]] = row.max() + 1.0
            rows.append(row)
        return np.array(rows)

    def step(self, input_ids: np.ndarray):
        self.full_calls += 1
        return self._logits(input_ids), None

    def step_top(self, input_ids: np.ndarray):
        self.top_calls += 1
        logprobs = log_softmax(self._logits(input_ids)).astype(np.float32)
        ids = np.argsort(-logprobs, axis=1, kind="stable")[:, : self.top_k]
        return np.take_along_axis(logprobs, ids, 1), ids, None

    def reorder(self, index: np.ndarray) -> None:
        self.histories = [self.histories[i] for i in index]


@pytest.mark.parametrize("beams", [1, 2])
@pytest.mark.parametrize("seed", range(6))
def test_search_on_the_graph_s_best_log_probabilities_chooses_what_the_full_vocabulary_does(beams, seed) -> None:
    # The fixed-shape decoder graph gives each beam's 2 x beams + 1 best log-probabilities; the
    # report (tokens, score) must be the one the search over all logits writes.
    full_scorer, top_scorer = RandomScorer(seed=seed), RandomScorer(top_k=2 * beams + 1, seed=seed)
    full, _ = _run(beam_search(full_scorer, BOS, EOS, beams=beams, max_steps=30))
    top, _ = _run(beam_search(top_scorer, BOS, EOS, beams=beams, max_steps=30))
    assert top_scorer.top_calls > 5 and top_scorer.full_calls == 0
    assert top.tokens == full.tokens and top.ended_with_eos == full.ended_with_eos
    assert top.score == pytest.approx(full.score, abs=1e-4)
    assert all(a != b for a, b in zip(top.tokens, top.tokens[1:], strict=False))  # no immediate repeat


def test_too_few_best_log_probabilities_for_the_beams_fall_back_to_the_logits() -> None:
    # Five per beam serve two beams, not three: then the logits are read, and the report is the same.
    scorer = RandomScorer(top_k=5, seed=1)
    result, _ = _run(beam_search(scorer, BOS, EOS, beams=3, max_steps=20))
    assert scorer.full_calls > 5 and scorer.top_calls == 0
    assert result.tokens == _run(beam_search(RandomScorer(seed=1), BOS, EOS, beams=3, max_steps=20))[0].tokens
