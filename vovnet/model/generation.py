"""Batched greedy answering for one action at a time, on top of one text-only prefill.

Shared by evaluation (every action for every question) and inference (only the chosen action), so the
two give the same answers by construction:
  1. `text_prefill` runs the text-only prompt once (left padded, KV cache kept) and gives the policy's
     features and the first answer token's logits;
  2. `answer_no` continues greedy decoding from that cache, recomputing nothing;
  3. `answer_vision` keeps the cache of the shared prefix `<|im_start|>user\n{text}` only, appends the
     image at the action's budget and the assistant header, and decodes (model.prompt_order: text_first;
     under image_first, and for the Thinking model, `answer_separate` prefills the whole vision prompt).
The text-only prompt is the prefix plus a suffix of fixed length (`<|im_end|>\n<|im_start|>assistant\n`),
so with left padding every prefix ends at the same column. Vision suffixes are left padded after that
column (a masked gap), so every row's last prompt token sits in the last column and decoding appends in
step. Positions are explicit: Qwen3-VL's M-RoPE positions come from the model's own get_rope_index over
the whole sequence (it skips masked columns), generated tokens continue from each row's largest position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm
from transformers import DynamicCache

from vovnet import VovnetError, actions
from vovnet.actions import NAMES as ACTIONS
from vovnet.model.encoding import collate
from vovnet.model.policy import PolicyFeatures, policy_features
from vovnet.model.prefix_reuse import _pad, _rope_model


@dataclass(frozen=True)
class TokenIds:
    pad: int
    image: int
    eos: int

    @classmethod
    def of(cls, processor) -> "TokenIds":
        tok = processor.tokenizer
        return cls(tok.pad_token_id, processor.image_token_id, tok.convert_tokens_to_ids("<|im_end|>"))


@dataclass
class Prefill:
    """The text-only pass over a batch: its cache, the policy features and what NO decoding needs."""

    cache: DynamicCache
    input_ids: torch.Tensor  # (B, W) left padded text-only prompts
    attention_mask: torch.Tensor  # (B, W)
    prefix_end: int | None  # column where every row's shared prefix ends (None: image_first)
    last_logits: torch.Tensor  # (B, V) at the last prompt token
    features: PolicyFeatures  # what the policy head reads
    next_position: torch.Tensor  # (B,) position of the first answer token


class NonFiniteLogits(Exception):
    """inf/NaN logits in `rows` of a batch (an fp16 overflow, typically); callers name the records."""

    def __init__(self, rows: list[int], action: str):
        super().__init__(f"non-finite logits in rows {rows} ({action})")
        self.rows, self.action = rows, action


def non_finite_error(exc: NonFiniteLogits, ids: list[str], dtype) -> VovnetError:
    """The one-line error for a NonFiniteLogits raised on a batch whose row i is record ids[i]."""
    named = ", ".join(ids[r] for r in exc.rows[:3]) + (" ..." if len(exc.rows) > 3 else "")
    return VovnetError(
        f"non-finite logits (inf/NaN) for record {named}, action {exc.action}, in {dtype}: the "
        "model overflowed; set model.dtype: bfloat16 on GPUs that have it, or model.dtype: float32 where it "
        "fits (a whole copy per GPU: 32.7 GiB for the 8B, more than a V100 holds; `python -m vovnet plan "
        "--dtype float32`)"
    )


def _check_finite(logits: torch.Tensor, action: str) -> None:
    bad = (~torch.isfinite(logits).all(-1)).nonzero().flatten().tolist()
    if bad:
        raise NonFiniteLogits(bad, action)


def _cache_of(out):
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def _select_cache(cache: DynamicCache, rows: torch.Tensor, length: int | None = None) -> DynamicCache:
    """A new cache holding `rows` (and the first `length` columns); the source cache is left untouched."""
    data = []
    for layer in cache.layers:
        k, v = layer.keys[rows], layer.values[rows]
        if length is not None:
            k, v = k[:, :, :length], v[:, :, :length]
        data.append((k.contiguous(), v.contiguous()))
    return DynamicCache(ddp_cache_data=data)


@torch.no_grad()
def text_prefill(lm, encs_no: list[dict], pad_id: int, image_token_id: int, device) -> Prefill:
    """`encs_no`: Encoder.encode(..., "no", with_target=False) outputs, one per question."""
    batch = collate(encs_no, pad_id, image_token_id, left_pad=True)
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    out = lm(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos[None].expand(3, -1, -1),
        use_cache=True,
        output_hidden_states=True,
        logits_to_keep=1,
    )
    last_logits = out.logits[:, -1]
    _check_finite(last_logits, "text pass")
    features = policy_features(out.hidden_states[-1], out.logits)  # left padded: every prompt ends in the last column
    prefix_end = None  # image_first: no prefix is shared with the vision prompts
    if encs_no[0]["prefix_len"] is not None:
        suffix = len(encs_no[0]["input_ids"]) - encs_no[0]["prefix_len"]
        assert all(len(e["input_ids"]) - e["prefix_len"] == suffix for e in encs_no)  # see the module docstring
        prefix_end = ids.shape[1] - suffix
    return Prefill(_cache_of(out), ids, mask, prefix_end, last_logits, features, pos[:, -1] + 1)


@torch.no_grad()
def greedy_decode(
    lm,
    last_logits: torch.Tensor,
    cache,
    attention_mask: torch.Tensor,
    next_position: torch.Tensor,
    eos_id: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """Greedy tokens per row, up to (not including) the end-of-turn token. A row still answering whose
    logits are not finite raises NonFiniteLogits (rows of this batch; answer_action names the action)."""
    rows = last_logits.shape[0]
    tokens: list[list[int]] = [[] for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool, device=last_logits.device)
    logits = last_logits
    position, mask = next_position.clone(), attention_mask
    for step in range(max_new_tokens):
        nxt = logits.argmax(-1)
        bad = ~torch.isfinite(logits).all(-1) & ~done
        done |= nxt == eos_id
        # one device-to-host copy per step, not one per row
        host = torch.stack([nxt, done.long(), bad.long()]).tolist()
        if any(host[2]):
            raise NonFiniteLogits([r for r, b in enumerate(host[2]) if b], "")
        for r, (token, finished) in enumerate(zip(host[0], host[1])):
            if not finished:
                tokens[r].append(token)
        if all(done.tolist()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = lm(
            input_ids=nxt[:, None],
            attention_mask=mask,
            position_ids=position[None, :, None].expand(3, -1, -1),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        cache, position = _cache_of(out), position + 1
        logits = out.logits[:, -1]
    return tokens


@torch.no_grad()
def answer_no(lm, prefill: Prefill, rows: list[int], eos_id: int, max_new_tokens: int) -> list[list[int]]:
    """NO_VISION answers for `rows` of the prefill batch, continuing from its cache."""
    sel = torch.tensor(rows, device=prefill.input_ids.device)
    return greedy_decode(
        lm,
        prefill.last_logits[sel],
        _select_cache(prefill.cache, sel),
        prefill.attention_mask[sel],
        prefill.next_position[sel],
        eos_id,
        max_new_tokens,
    )


def _vision_extra(encs: list[dict], device) -> dict:
    vis = [e for e in encs if "pixel_values" in e]
    if not vis:
        return {}
    return {
        "pixel_values": torch.cat([v["pixel_values"] for v in vis]).to(device),
        "image_grid_thw": torch.cat([v["image_grid_thw"] for v in vis]).to(device),
    }


@torch.no_grad()
def answer_vision(
    lm,
    prefill: Prefill,
    rows: list[int],
    encs: list[dict],
    pad_id: int,
    image_token_id: int,
    eos_id: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """COARSE/FULL answers for `rows` of the prefill batch; `encs[i]` is row i's encoding at that budget.

    The shared prefix's KV cache is reused; only the image, the end of the turn and the answer run."""
    device = prefill.input_ids.device
    sel = torch.tensor(rows, device=device)
    P = prefill.prefix_end
    prefix_ids, prefix_mask = prefill.input_ids[sel, :P], prefill.attention_mask[sel, :P]
    host_prefix = prefill.input_ids[:, :P].tolist()  # one copy for every row's check
    for r, e in zip(rows, encs):  # the vision prompt must extend exactly this row's text prefix
        assert host_prefix[r][P - e["prefix_len"] :] == e["input_ids"][: e["prefix_len"]]
    suffixes = [e["input_ids"][e["prefix_len"] :] for e in encs]
    suffix_ids = _pad(suffixes, pad_id, left=True).to(device)
    full_ids = torch.cat([prefix_ids, suffix_ids], dim=1)
    full_mask = torch.cat([prefix_mask, _pad([[1] * len(s) for s in suffixes], 0, left=True).to(device)], dim=1)
    mm = (full_ids == image_token_id).int()
    extra = _vision_extra(encs, device)
    pos, _ = _rope_model(lm).get_rope_index(full_ids, mm, extra.get("image_grid_thw"), None, full_mask)
    cache = _select_cache(prefill.cache, sel, P)
    out = lm(
        input_ids=suffix_ids,
        attention_mask=full_mask,
        position_ids=pos[:, :, P:],
        cache=cache,
        mm_token_type_ids=mm[:, P:],
        use_cache=True,
        logits_to_keep=1,
        **extra,
    )
    next_position = (pos.masked_fill(full_mask[None] == 0, -1).amax(dim=(0, 2))) + 1
    return greedy_decode(lm, out.logits[:, -1], _cache_of(out), full_mask, next_position, eos_id, max_new_tokens)


@torch.no_grad()
def answer_separate(
    lm, encs: list[dict], pad_id: int, image_token_id: int, device, eos_id: int, max_new_tokens: int
) -> list[list[int]]:
    """Answers from whole-prompt prefills: a model that cannot share the text pass's cache (the Thinking model
    for FULL), or image_first prompts, which share no prefix with the text-only prompt."""
    batch = collate(encs, pad_id, image_token_id, left_pad=True)
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    mm = batch["mm_token_type_ids"].to(device)
    extra = _vision_extra(encs, device)
    pos, _ = _rope_model(lm).get_rope_index(ids, mm, extra.get("image_grid_thw"), None, mask)
    out = lm(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        mm_token_type_ids=mm,
        use_cache=True,
        logits_to_keep=1,
        **extra,
    )
    next_position = (pos.masked_fill(mask[None] == 0, -1).amax(dim=(0, 2))) + 1
    return greedy_decode(lm, out.logits[:, -1], _cache_of(out), mask, next_position, eos_id, max_new_tokens)


def answer_action(
    model,
    prefill: Prefill,
    rows: list[int],
    encs: list[dict] | None,
    action: str,
    ids: TokenIds,
    max_new_tokens: int,
    thinking_max_new_tokens: int | None = None,
) -> list[list[int]]:
    """Token answers of `rows` under `action` (`encs`: their encodings at that action; unused for NO).
    The Thinking model (FULL, when configured) decodes up to `thinking_max_new_tokens` when given."""
    if not rows:
        return []
    try:
        if actions.by_name(action).text_only:
            return answer_no(model.lm, prefill, rows, ids.eos, max_new_tokens)
        if model.lm_for(action) is not model.lm:
            return answer_separate(
                model.lm_for(action),
                encs,
                ids.pad,
                ids.image,
                prefill.input_ids.device,
                ids.eos,
                thinking_max_new_tokens or max_new_tokens,
            )
        if prefill.prefix_end is None:  # image_first: the vision prompt is prefilled whole
            return answer_separate(
                model.lm, encs, ids.pad, ids.image, prefill.input_ids.device, ids.eos, max_new_tokens
            )
        return answer_vision(model.lm, prefill, rows, encs, ids.pad, ids.image, ids.eos, max_new_tokens)
    except NonFiniteLogits as exc:  # the decoder's rows are positions in `rows`
        raise NonFiniteLogits([rows[r] for r in exc.rows], action) from None


@torch.no_grad()
def generate_batch(
    model,
    processor,
    encs: list[dict],
    max_new_tokens: int,
    device,
    max_length: int,
    thinking_max_new_tokens: int | None = None,
) -> list[dict]:
    """Every action's greedy answer for one batch of questions (evaluation scores all policies on these).

    `encs[j]` is Encoder.encode_all(..., with_target=False) of question j. An action whose prompt
    exceeds `max_length` tokens is not generated: its output is '' and `too_long` marks it, so one long
    item costs its own score and never the whole set. The text pass always runs."""
    ids, tok = TokenIds.of(processor), processor.tokenizer
    prefill = text_prefill(model.lm, [e[actions.TEXT] for e in encs], ids.pad, ids.image, device)
    scores = model.policy_scores(prefill.features).float().cpu()
    per = [
        {
            "outputs": {},
            "vision_tokens": {},
            "too_long": {},
            "scores": scores[j].tolist(),
            "entropy": float(prefill.features.entropy[j]),
        }
        for j in range(len(encs))
    ]
    for action in ACTIONS:
        for j, e in enumerate(encs):
            per[j]["too_long"][action] = len(e[action]["input_ids"]) > max_length
            per[j]["vision_tokens"][action] = int(e[action]["vision_tokens"])
            per[j]["outputs"][action] = ""
        rows = [j for j in range(len(encs)) if not per[j]["too_long"][action]]
        answers = answer_action(
            model, prefill, rows, [encs[j][action] for j in rows], action, ids, max_new_tokens, thinking_max_new_tokens
        )
        for j, answer in zip(rows, answers):
            per[j]["outputs"][action] = tok.decode(answer, skip_special_tokens=True).strip()
    return per


@torch.no_grad()
def generate_all(
    model,
    processor,
    dataset,
    batch_size: int,
    max_new_tokens: int,
    device,
    max_length: int,
    thinking_max_new_tokens: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """generate_batch over `dataset` in batches of `batch_size`, in order."""
    results: list[dict] = []
    for start in tqdm(range(0, len(dataset), batch_size), unit="batch", desc="generate", disable=not progress):
        encs = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        results.extend(
            generate_batch(model, processor, encs, max_new_tokens, device, max_length, thinking_max_new_tokens)
        )
    return results


@torch.no_grad()
def text_entropies(model, processor, encs_no: list[dict], device) -> list[float]:
    """The answer entropy of the text-only pass (no image is read), per encoding."""
    ids = TokenIds.of(processor)
    return text_prefill(model.lm, encs_no, ids.pad, ids.image, device).features.entropy.float().tolist()
