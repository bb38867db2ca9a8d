"""MedMPT report decoder: a `transformers` BERT LM-head decoder plus an explicit KV-cache step.

`TextDecoder` holds a `BertLMHeadModel` (causal self-attention, cross-attention, tied LM head)
under the official checkpoint's names (`text_decoder.bert.bert.*`, `text_decoder.bert.cls.*`).
`DecoderStep` reuses those very weights but computes one decoding step with stacked KV-cache
tensors in and out, so it exports to ONNX with dynamic batch/past/new lengths.
Must not import app, ui or inference.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import BertConfig, BertLMHeadModel

from models.medmpt.config import MedMPTConfig

NEG = -1.0e4  # additive mask value that stays finite in float16


def bert_config(config: MedMPTConfig) -> BertConfig:
    """The BertConfig of the report decoder (eager attention so weights can be returned)."""
    bert = BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.text_width,
        num_hidden_layers=config.text_layers, num_attention_heads=config.text_heads,
        intermediate_size=config.text_ffn, hidden_act="gelu",
        max_position_embeddings=config.max_positions, type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.text_eps, pad_token_id=config.pad_token_id,
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        is_decoder=True, add_cross_attention=True, tie_word_embeddings=True,
    )
    bert._attn_implementation = "eager"
    return bert


class TextDecoder(nn.Module):
    """Wrapper that gives the BERT decoder its official prefix (`text_decoder.bert.`)."""

    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        self.bert = BertLMHeadModel(bert_config(config))

    def forward(self, input_ids: torch.Tensor, memory: torch.Tensor,
                output_attentions: bool = False):
        """Full-prefix forward (no cache): logits (B, T, V) and, optionally, attentions."""
        return self.bert(input_ids=input_ids, encoder_hidden_states=memory, use_cache=False,
                         output_attentions=output_attentions, return_dict=True)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, dh)."""
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, dh) -> (B, T, D)."""
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


def cross_keys_values(decoder: TextDecoder, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-attention keys and values of every layer, (L, B, H, S, dh) each, from the memory."""
    heads = decoder.bert.config.num_attention_heads
    keys, values = [], []
    for layer in decoder.bert.bert.encoder.layer:
        attention = layer.crossattention.self
        keys.append(_heads(attention.key(memory), heads))
        values.append(_heads(attention.value(memory), heads))
    return torch.stack(keys), torch.stack(values)


class DecoderStep(nn.Module):
    """One decoding step with stacked KV cache; shares the TextDecoder's parameters."""

    def __init__(self, decoder: TextDecoder) -> None:
        super().__init__()
        self.decoder = decoder
        self.heads = decoder.bert.config.num_attention_heads

    def _embed(self, input_ids: torch.Tensor, past: int) -> torch.Tensor:
        emb = self.decoder.bert.bert.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device) + past
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions).unsqueeze(0)
        x = x + emb.token_type_embeddings.weight[0]
        return emb.LayerNorm(x)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return _heads(x, self.heads)

    def _join(self, x: torch.Tensor) -> torch.Tensor:
        return _merge(x)

    def _self_qkv(self, attention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Self-attention queries (scaled by 1 / sqrt(dh)), keys and values of `x`, heads split."""
        q = self._split(attention.query(x)) / math.sqrt(attention.attention_head_size)
        return q, self._split(attention.key(x)), self._split(attention.value(x))

    def _cross_query(self, attention, x: torch.Tensor) -> torch.Tensor:
        """Cross-attention queries (scaled by 1 / sqrt(dh)) of `x`, heads split."""
        return self._split(attention.query(x)) / math.sqrt(attention.attention_head_size)

    def _attend(self, q, k, v, bias=None):
        """Attention of queries `q`, already scaled by 1 / sqrt(dh)."""
        scores = q @ k.transpose(-2, -1)
        if bias is not None:
            scores = scores + bias
        weights = torch.softmax(scores, dim=-1)
        return weights @ v, weights

    def forward(self, input_ids, past_keys, past_values, cross_keys, cross_values):
        past = past_keys.shape[3]
        x = self._embed(input_ids, past)
        steps = input_ids.shape[1]
        key_pos = torch.arange(past + steps, device=input_ids.device)
        query_pos = torch.arange(steps, device=input_ids.device) + past
        bias = (key_pos.unsqueeze(0) > query_pos.unsqueeze(1)).to(x.dtype) * NEG

        def self_keys_values(index, new_keys, new_values):
            return (torch.cat([past_keys[index], new_keys], dim=2),
                    torch.cat([past_values[index], new_values], dim=2))

        return self._layers(x, bias, self_keys_values, cross_keys, cross_values)

    def _layers(self, x, bias, self_keys_values, cross_keys, cross_values):
        """The decoder layers on the embedded tokens `x`: `self_keys_values(index, k, v)` gives
        layer `index`'s self-attention keys/values from the new tokens' k, v (and the cache).
        Returns logits, the stacked keys and values, and the cross-attention maps."""
        all_keys, all_values, cross_maps = [], [], []
        for index, layer in enumerate(self.decoder.bert.bert.encoder.layer):
            queries, keys, values = self._self_qkv(layer.attention.self, x)
            keys, values = self_keys_values(index, keys, values)
            all_keys.append(keys)
            all_values.append(values)
            context, _ = self._attend(queries, keys, values, bias)
            out = layer.attention.output
            x = out.LayerNorm(out.dense(self._join(context)) + x)
            ca = layer.crossattention
            context, weights = self._attend(self._cross_query(ca.self, x), cross_keys[index], cross_values[index])
            cross_maps.append(weights.mean(dim=1))
            x = ca.output.LayerNorm(ca.output.dense(self._join(context)) + x)
            x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(x)) + x)
        logits = self.decoder.bert.cls(x)
        return logits, torch.stack(all_keys), torch.stack(all_values), torch.stack(cross_maps, 1)


class StaticDecoderStep(DecoderStep):
    """One decoding step on a KV cache of fixed capacity, for CUDA graphs: every shape is the
    same at every step, so one captured graph can be replayed for the whole report.

    The cache rows are first taken in `beam_index` order (the beam reorder runs in the graph,
    so the cache never leaves the device); the new token's keys/values are written at slot
    `position` (its position in the text), and slots after it are masked. With the same
    weights it gives the logits of `DecoderStep` fed the first `position` cache slots.
    """

    # One token a step: (B, 1, D) and (B, H, 1, dh) hold the same numbers in the same order, so
    # heads split and join by reshapes alone. The general Transposes stay Transpose kernels in
    # the exported graph: 36 of the `paper` step's (H200 profile), each a launch in the graph.
    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.heads, 1, x.shape[2] // self.heads)

    def _join(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 1, x.shape[1] * x.shape[3])

    # A step is bound by kernel launches (H200: 0.61 ms for about 165 kernels), so the step's
    # graph folds what it can into the weights: the 1 / sqrt(dh) of the scores into the query
    # weights (no Div a layer, twice), and the self-attention q, k and v into one product of
    # the concatenated weights, split after (one MatMul and one Add instead of three each).
    # The exporter's constant folding computes the scaled and concatenated weights once.
    def _self_qkv(self, attention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = 1.0 / math.sqrt(attention.attention_head_size)
        weight = torch.cat([attention.query.weight * scale, attention.key.weight, attention.value.weight])
        bias = torch.cat([attention.query.bias * scale, attention.key.bias, attention.value.bias])
        q, k, v = nn.functional.linear(x, weight, bias).split(attention.all_head_size, dim=-1)
        return self._split(q), self._split(k), self._split(v)

    def _cross_query(self, attention, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / math.sqrt(attention.attention_head_size)
        return self._split(nn.functional.linear(x, attention.query.weight * scale, attention.query.bias * scale))

    # The beam reorder once for all layers, then one Split: two Gathers and two Splits a step
    # instead of a Gather per layer to pick the layer and another to reorder it (38 Gathers in
    # the `paper` step). scripts/graph_variants.py times the old layout beside it.
    @staticmethod
    def _layers_of(stacked: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return stacked.unbind(0)

    def _reordered_layers(self, cache: torch.Tensor, beam_index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._layers_of(cache.index_select(1, beam_index))

    def forward(self, input_ids, position, beam_index, cache_keys, cache_values, cross_keys, cross_values):
        emb = self.decoder.bert.bert.embeddings
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(position).unsqueeze(0)
        x = emb.LayerNorm(x + emb.token_type_embeddings.weight[0])
        slots = torch.arange(cache_keys.shape[3], device=input_ids.device)
        write = (slots == position).view(1, 1, -1, 1)
        bias = (slots > position).to(x.dtype).view(1, 1, 1, -1) * NEG

        keys_by_layer = self._reordered_layers(cache_keys, beam_index)
        values_by_layer = self._reordered_layers(cache_values, beam_index)

        def self_keys_values(index, new_keys, new_values):
            return (torch.where(write, new_keys, keys_by_layer[index]),
                    torch.where(write, new_values, values_by_layer[index]))

        logits, keys, values, cross = self._layers(x, bias, self_keys_values, self._layers_of(cross_keys),
                                                   self._layers_of(cross_values))
        # The beam search needs only each beam's best few log-probabilities: computed here, on
        # the device, it need not copy the logits (B x V) to the host and normalise them there.
        top = min(2 * input_ids.shape[0] + 1, logits.shape[-1])
        top_logprobs, top_ids = torch.log_softmax(logits[:, -1].float(), dim=-1).topk(top, dim=-1)
        return logits, keys, values, cross, top_logprobs, top_ids
