"""The ONNX decoder-step graph as a beam-search step function with a KV cache (numpy side).

Under IO binding (CUDA) the cache stays in GPU memory from one step to the next; it comes to
the host only when the beams change order (about one step in six for the bundled model on the
real series), to be reordered there. Must not import onnxruntime (it talks to a GraphSession,
whose device-resident outputs have `.shape` and `.numpy()`), app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CACHE = ("present_keys", "present_values")
STATIC_CACHE_SWAP = {"cache_keys": "next_cache_keys", "cache_values": "next_cache_values"}
"""The fixed-shape decoder's cache inputs and the outputs that feed them next step (FixedBinding)."""
STATIC_PACKED_INPUTS = ("input_ids", "position", "beam_index")
STATIC_PACKED_OUTPUTS = ("top_logprobs", "top_ids", "cross_attention")
"""The fixed-shape decoder's small inputs and outputs of every step, each group copied in one
transfer (FixedBinding packed_inputs, packed_outputs)."""


def _host(cache: Any) -> np.ndarray:
    return cache if isinstance(cache, np.ndarray) else cache.numpy()


class KVCacheStep:
    """Feeds one token per beam, keeps past keys/values, reorders them by beam index."""

    def __init__(self, decoder: Any, cross_keys: np.ndarray, cross_values: np.ndarray) -> None:
        self._decoder = decoder  # a GraphSession (run, keep_on_device)
        self._cross = (cross_keys, cross_values)  # (L, 1, H, S, dh)
        self._expanded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        layers, _, heads, _, head_dim = cross_keys.shape
        # The cache stays in the graph's dtype (float16 on CUDA) between steps.
        cache_dtype = getattr(decoder, "input_types", {}).get("past_keys", np.float32)
        self._empty = np.zeros((layers, 1, heads, 0, head_dim), dtype=cache_dtype)
        self._past = (self._empty, self._empty)

    def reset(self) -> None:
        self._past = (self._empty, self._empty)

    def _cross_for(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        if batch not in self._expanded:
            keys, values = (np.ascontiguousarray(np.repeat(c, batch, axis=1)) for c in self._cross)
            self._decoder.keep_on_device("cross_keys", keys)
            self._decoder.keep_on_device("cross_values", values)
            self._expanded = {batch: (keys, values)}
        return self._expanded[batch]

    def step(self, input_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = input_ids.shape[0]
        past_keys, past_values = self._past
        if past_keys.shape[1] != batch:
            past_keys, past_values = (np.repeat(_host(p)[:, :1], batch, axis=1) for p in self._past)
        cross_keys, cross_values = self._cross_for(batch)
        out = self._decoder.run({
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
            "past_keys": past_keys, "past_values": past_values,
            "cross_keys": cross_keys, "cross_values": cross_values,
        }, ["logits", "present_keys", "present_values", "cross_attention"], keep_dtype=_CACHE, on_device=_CACHE)
        self._past = (out["present_keys"], out["present_values"])
        return out["logits"][:, -1, :], out["cross_attention"][:, :, -1, :]

    def reorder(self, index: np.ndarray) -> None:
        index = np.asarray(index)
        if len(index) == self._past[0].shape[1] and np.array_equal(index, np.arange(len(index))):
            return  # every beam continues itself: the cache stays where it is
        keys, values = (_host(p) for p in self._past)
        self._past = (np.take(keys, index, axis=1), np.take(values, index, axis=1))


class StaticKVCacheStep:
    """The same step function on the fixed-shape decoder graph ("decoder_static"): a cache of
    fixed capacity and batch that never leaves the device; the beam reorder is an input of the
    next step; fewer beams than the graph's batch are padded. Talks to a FixedBinding (set,
    set_many, run, get_many, shapes), so that on CUDA each step replays a captured CUDA graph;
    bound with STATIC_PACKED_INPUTS and STATIC_PACKED_OUTPUTS, a step copies in once and out once."""

    def __init__(self, binding: Any, cross_keys: np.ndarray, cross_values: np.ndarray) -> None:
        self._binding = binding
        self.batch = binding.shapes["input_ids"][0]
        self.capacity = binding.shapes["cache_keys"][3]
        for name, cross in (("cross_keys", cross_keys), ("cross_values", cross_values)):
            binding.set(name, np.repeat(cross, self.batch, axis=1))  # (L, 1, ...) -> (L, batch, ...)
        self._empty = np.zeros(binding.shapes["cache_keys"], dtype=binding.types["cache_keys"])
        # How many best log-probabilities per beam the graph gives (0: a package from before
        # 2026-11-27 gives only the logits, which the beam search then normalises on the host).
        self.top_k = binding.shapes["top_ids"][1] if "top_ids" in binding.shapes else 0
        self.reset()

    @staticmethod
    def holds(binding: Any, beams: int, steps: int) -> bool:
        """Whether a search of `beams` beams and up to `steps` tokens fits the graph's shapes."""
        return beams <= binding.shapes["input_ids"][0] and steps <= binding.shapes["cache_keys"][3]

    def reset(self) -> None:
        # Masked slots are never read, but a stale NaN would still poison the attention sums.
        self._binding.set("cache_keys", self._empty)
        self._binding.set("cache_values", self._empty)
        self._position = 0
        self._beam_index = np.zeros(self.batch, dtype=np.int64)

    def _padded(self, rows: np.ndarray) -> np.ndarray:
        return np.concatenate([rows, np.repeat(rows[-1:], self.batch - len(rows), axis=0)])

    def _run(self, input_ids: np.ndarray) -> int:
        count = input_ids.shape[0]
        if count > self.batch or self._position >= self.capacity:
            raise ValueError(f"the fixed-shape decoder holds {self.batch} beams and {self.capacity} tokens")
        self._binding.set_many({"input_ids": self._padded(np.asarray(input_ids, dtype=np.int64)),
                                "position": np.array([self._position], dtype=np.int64),
                                "beam_index": self._beam_index})
        self._binding.run()
        self._position += 1
        self._beam_index = np.arange(self.batch, dtype=np.int64)
        return count

    def step(self, input_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = self._run(input_ids)
        out = self._binding.get_many(["logits", "cross_attention"])
        return out["logits"][:count, -1, :], out["cross_attention"][:count, :, -1, :]

    def step_top(self, input_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like `step`, but gives each beam's `top_k` best log-probabilities and their token ids
        (best first) instead of the logits: a few numbers to copy to the host, not B x V."""
        if not self.top_k:
            raise ValueError("this fixed-shape decoder gives no top log-probabilities")
        count = self._run(input_ids)
        out = self._binding.get_many(STATIC_PACKED_OUTPUTS)
        return out["top_logprobs"][:count], out["top_ids"][:count], out["cross_attention"][:count, :, -1, :]

    def reorder(self, index: np.ndarray) -> None:
        self._beam_index = self._padded(np.asarray(index, dtype=np.int64))
