"""Rows of text passes regrouped into new batches, so a branch can run on questions from several passes.

`take` keeps some rows of a text pass (their KV cache, prompt ids, last logits and positions) as a text
pass of their own; `join` left pads such pieces to one width and stacks them. The result is a `Prefill`
that `answer_action` continues exactly as it would the original: every row keeps its own tokens, cache
entries and positions (positions never depend on padding), the fixed text suffix still ends every row
in the last column, and padded columns are masked out (their cache entries are zeros). The policy has
already read these rows, so the result carries no policy features.
"""
from __future__ import annotations

import dataclasses

import torch
from transformers import DynamicCache

from vovnet.model.generation import Prefill


def take(prefill: Prefill, rows: list[int]) -> Prefill:
    """`rows` of `prefill` as a new Prefill, without the columns that pad every one of them (all rows: the
    same tensors, which no branch modifies; otherwise copies)."""
    if rows == list(range(prefill.input_ids.shape[0])):
        return dataclasses.replace(prefill, features=None)
    device = prefill.input_ids.device
    sel = torch.tensor(rows, device=device)
    mask = prefill.attention_mask[sel]
    start = prefill.input_ids.shape[1] - int(mask.sum(-1).max())  # left padding shared by all selected rows
    data = [(layer.keys[sel, :, start:].contiguous(), layer.values[sel, :, start:].contiguous())
            for layer in prefill.cache.layers]
    return dataclasses.replace(prefill, cache=DynamicCache(ddp_cache_data=data), input_ids=prefill.input_ids[sel, start:],
                               attention_mask=mask[:, start:], prefix_end=prefill.prefix_end - start,
                               last_logits=prefill.last_logits[sel], features=None,
                               next_position=prefill.next_position[sel])


def _left_pad(t: torch.Tensor, width: int, dim: int, value: int | float = 0) -> torch.Tensor:
    extra = width - t.shape[dim]
    if extra == 0:
        return t
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([torch.full(shape, value, dtype=t.dtype, device=t.device), t], dim=dim)


def join(pieces: list[Prefill], pad_id: int) -> Prefill:
    """One Prefill of every row of `pieces`, in order, left padded to the widest (`pad_id` in padded ids)."""
    if len(pieces) == 1:
        return pieces[0]
    width = max(p.input_ids.shape[1] for p in pieces)
    suffix = {p.input_ids.shape[1] - p.prefix_end for p in pieces}
    assert len(suffix) == 1, "text passes with different suffix lengths"  # a fixed suffix, see generation.py
    data = []
    for i in range(len(pieces[0].cache.layers)):
        layers = [p.cache.layers[i] for p in pieces]
        data.append((torch.cat([_left_pad(x.keys, width, 2) for x in layers]),
                     torch.cat([_left_pad(x.values, width, 2) for x in layers])))
    return dataclasses.replace(
        pieces[0], cache=DynamicCache(ddp_cache_data=data),
        input_ids=torch.cat([_left_pad(p.input_ids, width, 1, pad_id) for p in pieces]),
        attention_mask=torch.cat([_left_pad(p.attention_mask, width, 1) for p in pieces]),
        prefix_end=width - suffix.pop(), last_logits=torch.cat([p.last_logits for p in pieces]), features=None,
        next_position=torch.cat([p.next_position for p in pieces]))
