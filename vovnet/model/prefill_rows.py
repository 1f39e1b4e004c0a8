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
    data = [
        (layer.keys[:, :, start:].index_select(0, sel), layer.values[:, :, start:].index_select(0, sel))
        for layer in prefill.cache.layers
    ]  # one contiguous copy each
    return dataclasses.replace(
        prefill,
        cache=DynamicCache(ddp_cache_data=data),
        input_ids=prefill.input_ids[sel, start:],
        attention_mask=mask[:, start:],
        prefix_end=None if prefill.prefix_end is None else prefill.prefix_end - start,
        last_logits=prefill.last_logits[sel],
        features=None,
        next_position=prefill.next_position[sel],
    )


def _stack_left_padded(parts: list[torch.Tensor], width: int, dim: int, value: int | float = 0) -> torch.Tensor:
    """`parts` stacked along dim 0, each left padded with `value` to `width` along `dim` (one copy each)."""
    shape = list(parts[0].shape)
    shape[0], shape[dim] = sum(t.shape[0] for t in parts), width
    out = torch.full(shape, value, dtype=parts[0].dtype, device=parts[0].device)
    row = 0
    for t in parts:
        out.narrow(0, row, t.shape[0]).narrow(dim, width - t.shape[dim], t.shape[dim]).copy_(t)
        row += t.shape[0]
    return out


def join(pieces: list[Prefill], pad_id: int) -> Prefill:
    """One Prefill of every row of `pieces`, in order, left padded to the widest (`pad_id` in padded ids)."""
    if len(pieces) == 1:
        return pieces[0]
    width = max(p.input_ids.shape[1] for p in pieces)
    shared = pieces[0].prefix_end is not None  # text_first: the vision branches reuse the shared prefix
    suffix = {p.input_ids.shape[1] - p.prefix_end for p in pieces} if shared else {None}
    assert len(suffix) == 1, "text passes with different suffix lengths"  # a fixed suffix, see generation.py
    data = []
    for i in range(len(pieces[0].cache.layers)):
        layers = [p.cache.layers[i] for p in pieces]
        data.append(
            (
                _stack_left_padded([x.keys for x in layers], width, 2),
                _stack_left_padded([x.values for x in layers], width, 2),
            )
        )
    return dataclasses.replace(
        pieces[0],
        cache=DynamicCache(ddp_cache_data=data),
        input_ids=_stack_left_padded([p.input_ids for p in pieces], width, 1, pad_id),
        attention_mask=_stack_left_padded([p.attention_mask for p in pieces], width, 1),
        prefix_end=width - suffix.pop() if shared else None,
        last_logits=torch.cat([p.last_logits for p in pieces]),
        features=None,
        next_position=torch.cat([p.next_position for p in pieces]),
    )
