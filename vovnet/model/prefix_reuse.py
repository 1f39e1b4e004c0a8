"""Text-pass prefix reuse: the shared prefix `<|im_start|>user\n{text}` is run once, and each action's
suffix (its image, if any, then the answer) runs on a copy of that KV cache.

Qwen3-VL's multimodal rotary positions depend on the whole sequence, so positions are computed for
each action's full sequence (prefix + suffix) with the model's own get_rope_index and the suffix part is
passed explicitly. The prefix is left-padded and suffixes right-padded, so every sample's valid tokens
stay contiguous, which is what get_rope_index and the attention mask assume.

Under gradient checkpointing a layer's forward runs again in backward. A cache that appends on every call
would then change between the first run and the replay, which is why transformers drops the cache in
checkpointed layers. Here the cache never changes after its first write: the prefix pass stores each
layer's keys/values once (a replay recomputes them and stores nothing), and the suffix passes read prefix +
their own keys/values without storing them. Every replay sees what the first run saw, so the cache is kept
in checkpointed layers and reuse stays exact with gradients flowing into the shared prefix.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers.cache_utils import DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer

from vovnet.actions import NAMES as ACTIONS
from vovnet.actions import TEXT
from vovnet.model.encoding import IGNORE
from vovnet.model.losses import per_sample_lm_loss
from vovnet.model.policy import PolicyFeatures, policy_features


def _pad(rows: list[list[int]], value: int, left: bool) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([([value] * (width - len(r)) + r) if left else (r + [value] * (width - len(r))) for r in rows])


class _WriteOnceCache(DynamicCache):
    """The prefix pass's cache: each layer's first call stores; a checkpoint replay returns its own states."""

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        if layer_idx < len(self.layers) and self.layers[layer_idx].is_initialized:
            return key_states, value_states  # the replay of the call that stored them (the cache was empty)
        return super().update(key_states, value_states, layer_idx, *args, **kwargs)


class _ReadOnlyPrefix(DynamicCache):
    """A suffix pass's view of the prefix cache: attends to prefix + its own states, stores nothing."""

    def __init__(self, prefix: DynamicCache):
        super().__init__()
        self.layers = prefix.layers

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        layer = self.layers[layer_idx]
        return torch.cat([layer.keys, key_states], dim=-2), torch.cat([layer.values, value_states], dim=-2)


@contextmanager
def _cache_kept_under_checkpointing(lm):
    """These caches are replay-safe, so checkpointed layers may keep them (transformers' opt-in flag)."""
    layers = [m for m in lm.modules() if isinstance(m, GradientCheckpointingLayer)]
    for m in layers:
        m._can_checkpoint_with_cache = True
    try:
        yield
    finally:
        for m in layers:
            del m._can_checkpoint_with_cache  # back to the class default


def _rope_model(lm):
    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    return base.model


def reuse_forward(
    lm, encs: list[dict], pad_id: int, image_token_id: int, device
) -> tuple[torch.Tensor, PolicyFeatures]:
    """Per-sample task loss of every action (B, actions) and the text pass's policy features, from one prefix
    pass. `encs` are Encoder.encode_all outputs (one per sample)."""
    prefix_rows = [e[TEXT]["input_ids"][: e[TEXT]["prefix_len"]] for e in encs]
    for e, prefix in zip(encs, prefix_rows):  # the prefix must be token-identical in all actions
        assert all(e[a]["input_ids"][: len(prefix)] == prefix for a in ACTIONS)
    prefix_ids = _pad(prefix_rows, pad_id, left=True).to(device)
    prefix_mask = _pad([[1] * len(r) for r in prefix_rows], 0, left=True).to(device)
    text_pos = (prefix_mask.long().cumsum(-1) - 1).clamp(min=0)
    prefix_cache = _WriteOnceCache()
    with _cache_kept_under_checkpointing(lm):
        lm(
            input_ids=prefix_ids,
            attention_mask=prefix_mask,
            position_ids=text_pos[None].expand(3, -1, -1),
            cache=prefix_cache,
            use_cache=False,
        )  # use_cache would only make a cache; we pass our own
        return _suffix_passes(lm, encs, prefix_ids, prefix_mask, prefix_cache, pad_id, image_token_id, device)


def _suffix_passes(lm, encs, prefix_ids, prefix_mask, prefix_cache, pad_id, image_token_id, device):
    P = prefix_ids.shape[1]
    rope = _rope_model(lm)
    losses, features = [], None
    for action in ACTIONS:
        rows = [e[action]["input_ids"][e[TEXT]["prefix_len"] :] for e in encs]
        labels = [e[action]["labels"][e[TEXT]["prefix_len"] :] for e in encs]
        suffix_ids = _pad(rows, pad_id, left=False).to(device)
        suffix_labels = _pad(labels, IGNORE, left=False).to(device)
        full_ids = torch.cat([prefix_ids, suffix_ids], dim=1)
        full_mask = torch.cat([prefix_mask, _pad([[1] * len(r) for r in rows], 0, left=False).to(device)], dim=1)
        mm = (full_ids == image_token_id).int()
        vis = [e[action] for e in encs if "pixel_values" in e[action]]
        extra = {}
        if vis:
            extra = {
                "pixel_values": torch.cat([v["pixel_values"] for v in vis]).to(device),
                "image_grid_thw": torch.cat([v["image_grid_thw"] for v in vis]).to(device),
            }
        pos, _ = rope.get_rope_index(full_ids, mm, extra.get("image_grid_thw"), None, full_mask)
        out = lm(
            input_ids=suffix_ids,
            attention_mask=full_mask,
            position_ids=pos[:, :, P:],
            cache=_ReadOnlyPrefix(prefix_cache),
            mm_token_type_ids=mm[:, P:],
            use_cache=False,
            output_hidden_states=action == TEXT,
            **extra,
        )
        losses.append(per_sample_lm_loss(out.logits, suffix_labels)[0])
        if action == TEXT:  # the text pass: the policy reads its last prompt token
            idx = torch.tensor([e[TEXT]["prompt_len"] - e[TEXT]["prefix_len"] - 1 for e in encs], device=device)
            features = policy_features(out.hidden_states[-1], out.logits, idx)
    return torch.stack(losses, dim=-1), features
