"""Vision-token pruning at equal tokens: keep a share of an image's merged vision tokens, then answer.

Two rules pick the kept tokens of each image:
  - `random`: a seeded draw per prompt (seeded by the prompt's token ids, so a record keeps the same tokens
    whatever batch it sits in);
  - `attention`: FastV's rule (Chen et al. 2024, "An Image is Worth 1/2 Tokens After Layer 2"): the tokens the
    last prompt token attends to least at decoder layer K are dropped. SDPA returns no attention weights, so
    the scores are computed here from layer K's own query/key projections on the full sequence, in a scoring
    pass that stops at layer K. Unlike FastV, which drops tokens inside the model from layer K on, the kept
    tokens then run through every layer: each layer's cache holds the same columns, and the cost is the kept
    count everywhere (the scoring pass adds K layers over the whole image).

Qwen3-VL specifics (transformers' modeling_qwen3_vl.py):
  - the multimodal rotary positions come from get_rope_index over the unpruned sequence, then the dropped
    columns are removed, so a kept token keeps its (t, h, w) position and the text after the image keeps
    its own;
  - the vision tower runs once on the whole image (get_image_features); its merged tokens and each DeepStack
    level's features are indexed with the same kept indices and handed to the model as mm_encoder_outputs;
  - under text_first the shared prefix's cache from the text pass is reused as in generation.answer_vision:
    pruning only touches the suffix, which holds the image.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
from transformers.models.qwen3_vl.modeling_qwen3_vl import (
    BaseModelOutputWithDeepstackFeatures,
    apply_rotary_pos_emb,
    repeat_kv,
)

from vovnet.model.encoding import collate
from vovnet.model.generation import Prefill, _cache_of, _select_cache, _vision_extra, greedy_decode
from vovnet.model.prefix_reuse import _pad, _rope_model

METHODS = ("random", "attention")


@dataclass(frozen=True)
class PruneRule:
    method: str  # one of METHODS
    share: float  # kept share of each image's merged vision tokens, in (0, 1]
    layer: int = 2  # attention: the decoder layer whose attention scores the tokens (FastV's K)
    seed: int = 0  # random: the draw's seed


def kept_count(tokens: int, share: float) -> int:
    """Tokens an image of `tokens` merged tokens keeps at `share`: rounded half up, at least one."""
    return max(1, min(tokens, math.floor(share * tokens + 0.5)))


@dataclass
class Sequences:
    """One action's prompts for some rows of a prefill batch: the columns after the reused cache (`ids`),
    the attention mask and M-RoPE positions over cache + those columns, and the cache itself (None: none)."""

    ids: torch.Tensor  # (B, S)
    mask: torch.Tensor  # (B, P + S)
    positions: torch.Tensor  # (3, B, S)
    cache: object
    prefix: int  # P, the cached columns


class _StopAtLayer(Exception):
    """Raised by the scoring hook once layer K's inputs are captured: the layers above are not needed."""


def _sequences(lm, prefill: Prefill, rows: list[int], encs: list[dict], pad_id: int, image_id: int, share: bool):
    """The vision prompts of `rows`, positioned over their whole sequence before any pruning; `share`:
    reuse the text pass's prefix cache (text_first, same model)."""
    device = prefill.input_ids.device
    extra = _vision_extra(encs, device)
    if share:
        sel = torch.tensor(rows, device=device)
        P = prefill.prefix_end
        suffixes = [e["input_ids"][e["prefix_len"] :] for e in encs]
        suffix_ids = _pad(suffixes, pad_id, left=True).to(device)
        full_ids = torch.cat([prefill.input_ids[sel, :P], suffix_ids], dim=1)
        suffix_mask = _pad([[1] * len(s) for s in suffixes], 0, left=True).to(device)
        full_mask = torch.cat([prefill.attention_mask[sel, :P], suffix_mask], dim=1)
        cache = _select_cache(prefill.cache, sel, P)
    else:
        batch = collate(encs, pad_id, image_id, left_pad=True)
        full_ids, full_mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        P, cache = 0, None
    mm = (full_ids == image_id).int()
    pos, _ = _rope_model(lm).get_rope_index(full_ids, mm, extra.get("image_grid_thw"), None, full_mask)
    return Sequences(full_ids[:, P:], full_mask, pos[:, :, P:], cache, P), extra


def _image_spans(seq: Sequences, image_id: int, per_image: list[int]) -> list[list[torch.Tensor]]:
    """Per row, the suffix columns of each of its images (images in prompt order, as the features are)."""
    spans, it = [], iter(per_image)
    for r in range(seq.ids.shape[0]):
        cols = (seq.ids[r] == image_id).nonzero().flatten()
        row, start = [], 0
        while start < len(cols):
            n = next(it)
            row.append(cols[start : start + n])
            start += n
        spans.append(row)
    return spans


def _random_keep(seq: Sequences, spans, rule: PruneRule) -> list[list[torch.Tensor]]:
    keep = []
    for r, row in enumerate(spans):
        valid = seq.ids[r][seq.mask[r, seq.prefix :].bool()].tolist()
        gen = torch.Generator().manual_seed(zlib.crc32(repr((rule.seed, valid)).encode()))
        draws = [torch.randperm(len(c), generator=gen)[: kept_count(len(c), rule.share)] for c in row]
        keep.append([d.sort().values for d in draws])
    return keep


def _layer_scores(lm, seq: Sequences, feats, layer: int) -> torch.Tensor:
    """(B, S) the attention of each row's last prompt token over the suffix columns at decoder layer `layer`,
    averaged over heads (the softmax also spans the cached prefix and skips padded columns)."""
    text = _rope_model(lm).language_model
    if not 0 <= layer < len(text.layers):
        raise ValueError(f"attention layer {layer} outside the model's {len(text.layers)} decoder layers")
    attn, captured = text.layers[layer].self_attn, {}

    def hook(_module, _args, kwargs):
        captured.update(kwargs)
        raise _StopAtLayer

    rows = torch.arange(seq.ids.shape[0], device=seq.ids.device)
    cache = None if seq.cache is None else _select_cache(seq.cache, rows)  # a copy: this pass appends to it
    handle = attn.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        lm(
            input_ids=seq.ids,
            attention_mask=seq.mask,
            position_ids=seq.positions,
            cache=cache,
            use_cache=cache is not None,
            mm_encoder_outputs={"image": feats},
        )
    except _StopAtLayer:
        pass
    finally:
        handle.remove()
    h, (cos, sin) = captured["hidden_states"], captured["position_embeddings"]
    shape = (*h.shape[:-1], -1, attn.head_dim)
    q = attn.q_norm(attn.q_proj(h).view(shape)).transpose(1, 2)
    k = attn.k_norm(attn.k_proj(h).view(shape)).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    if cache is not None and seq.prefix:
        k = torch.cat([seq.cache.layers[layer].keys, k], dim=-2)
    k = repeat_kv(k, attn.num_key_value_groups)
    logits = torch.einsum("bhd,bhtd->bht", q[:, :, -1].float(), k.float()) * attn.scaling
    logits = logits.masked_fill(seq.mask[:, None] == 0, float("-inf"))
    return logits.softmax(-1).mean(1)[:, seq.prefix :]


def _attention_keep(lm, seq: Sequences, spans, feats, rule: PruneRule) -> list[list[torch.Tensor]]:
    scores = _layer_scores(lm, seq, feats, rule.layer)
    keep = []
    for r, row in enumerate(spans):
        picked = []
        for cols in row:
            top = scores[r, cols].topk(kept_count(len(cols), rule.share)).indices
            picked.append(top.sort().values.cpu())
        keep.append(picked)
    return keep


def prune(seq: Sequences, spans, keep, feats, pad_id: int) -> tuple[Sequences, object, list[int]]:
    """The sequences without the dropped image columns (re-padded on the left), the image features and every
    DeepStack level indexed with the same kept indices, and the kept count per row."""
    device = seq.ids.device
    flat_keep = [k for row in keep for k in row]
    merged = tuple(f[k.to(f.device)] for f, k in zip(feats.pooler_output, flat_keep))
    deepstack = [tuple(f[k.to(f.device)] for f, k in zip(level, flat_keep)) for level in feats.deepstack_features]
    cols, counts = [], []
    for r, (row_spans, row_keep) in enumerate(zip(spans, keep)):
        drop = torch.zeros(seq.ids.shape[1], dtype=torch.bool, device=device)
        for c, k in zip(row_spans, row_keep):
            drop[c] = True
            drop[c[k.to(device)]] = False
        valid = seq.mask[r, seq.prefix :].bool() & ~drop
        cols.append(valid.nonzero().flatten())
        counts.append(sum(len(k) for k in row_keep))
    width = max(len(c) for c in cols)
    B = seq.ids.shape[0]
    ids = torch.full((B, width), pad_id, dtype=seq.ids.dtype, device=device)
    mask = torch.zeros(B, width, dtype=seq.mask.dtype, device=device)
    pos = torch.zeros(3, B, width, dtype=seq.positions.dtype, device=device)
    for r, c in enumerate(cols):
        ids[r, width - len(c) :] = seq.ids[r, c]
        mask[r, width - len(c) :] = 1
        pos[:, r, width - len(c) :] = seq.positions[:, r, c]
    full_mask = torch.cat([seq.mask[:, : seq.prefix], mask], dim=1)
    out = BaseModelOutputWithDeepstackFeatures(pooler_output=merged, deepstack_features=deepstack)
    return Sequences(ids, full_mask, pos, seq.cache, seq.prefix), out, counts


@torch.no_grad()
def answer_pruned(
    lm,
    prefill: Prefill,
    rows: list[int],
    encs: list[dict],
    ids,
    max_new_tokens: int,
    rule: PruneRule,
    share_prefix: bool,
) -> tuple[list[list[int]], list[int]]:
    """(token answers, kept vision tokens) of `rows` with each image pruned to `rule.share` of its merged
    tokens; `encs[i]`: row i's encoding at the action's budget (with an image); `share_prefix`: reuse the
    text pass's prefix cache (text_first, the model that ran the text pass)."""
    if not rows:
        return [], []
    seq, extra = _sequences(lm, prefill, rows, encs, ids.pad, ids.image, share_prefix)
    base = _rope_model(lm)
    merge = base.visual.spatial_merge_size**2
    feats = base.get_image_features(extra["pixel_values"], extra["image_grid_thw"], return_dict=True)
    per_image = (extra["image_grid_thw"].prod(-1) // merge).tolist()
    spans = _image_spans(seq, ids.image, per_image)
    if rule.method == "random":
        keep = _random_keep(seq, spans, rule)
    else:
        keep = _attention_keep(lm, seq, spans, feats, rule)
    kept, feats, counts = prune(seq, spans, keep, feats, ids.pad)
    out = lm(
        input_ids=kept.ids,
        attention_mask=kept.mask,
        position_ids=kept.positions,
        cache=kept.cache,
        use_cache=True,
        mm_encoder_outputs={"image": feats},
        logits_to_keep=1,
    )
    next_position = kept.positions.masked_fill(kept.mask[None, :, kept.prefix :] == 0, -1).amax(dim=(0, 2)) + 1
    tokens = greedy_decode(lm, out.logits[:, -1], _cache_of(out), kept.mask, next_position, ids.eos, max_new_tokens)
    return tokens, counts
