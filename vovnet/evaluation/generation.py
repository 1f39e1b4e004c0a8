"""Greedy generation for every action of every question (batched, left padding, no teacher forcing).

Generating all three actions once lets the learned policy, every baseline and every Pareto point be
scored on the same real outputs: a policy is then just a choice of action per question.
An action whose prompt exceeds `max_length` tokens is not generated: its output is '' and `too_long`
marks it, so one long item costs its own score and never the whole set. The text pass always runs.
"""
from __future__ import annotations

import time

import torch
from tqdm import tqdm

from vovnet.model.budgets import ACTIONS
from vovnet.model.vovnet import model_inputs
from vovnet.model.encoding import RecordDataset, collate


@torch.no_grad()
def generate_all(model, processor, dataset: RecordDataset, batch_size: int, max_new_tokens: int, device,
                 max_length: int, thinking_max_new_tokens: int | None = None) -> list[dict]:
    tok = processor.tokenizer
    pad_id, image_id = tok.pad_token_id, processor.image_token_id
    eos_id = tok.convert_tokens_to_ids("<|im_end|>")
    results: list[dict] = []
    for start in tqdm(range(0, len(dataset), batch_size), unit="batch", desc="generate"):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        encs = [dataset[i] for i in idx]
        per = [{"outputs": {}, "latency": {}, "vision_tokens": {}, "too_long": {}} for _ in idx]
        # Text-only pass: the policy's features and action scores.
        t0 = time.perf_counter()
        text_batch = {k: v.to(device) for k, v in collate([e["no"] for e in encs], pad_id, image_id, left_pad=True).items()}
        _, feats = model.text_pass(text_batch, with_labels=False)
        scores = model.policy_scores(feats).float().cpu()
        policy_time = (time.perf_counter() - t0) / len(idx)
        for action in ACTIONS:
            for j, e in enumerate(encs):
                per[j]["too_long"][action] = len(e[action]["input_ids"]) > max_length
                per[j]["vision_tokens"][action] = int(e[action]["vision_tokens"])
                per[j]["outputs"][action], per[j]["latency"][action] = "", None
            rows = [j for j in range(len(encs)) if not per[j]["too_long"][action]]
            if not rows:
                continue
            batch = {k: v.to(device) for k, v in collate([encs[j][action] for j in rows], pad_id, image_id, left_pad=True).items()}
            t1 = time.perf_counter()
            lm = model.lm_for(action)
            budget = thinking_max_new_tokens if lm is model.full_lm and thinking_max_new_tokens else max_new_tokens
            out = lm.generate(**model_inputs(batch, with_labels=False), max_new_tokens=budget,
                              do_sample=False, eos_token_id=eos_id, pad_token_id=pad_id)
            gen_time = (time.perf_counter() - t1) / len(rows)
            texts = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            for j, text in zip(rows, texts):
                per[j]["outputs"][action] = text.strip()
                # NO continues from the text pass itself; vision actions pay the text pass and then their own run.
                per[j]["latency"][action] = gen_time + (policy_time if action != "no" else 0.0)
        for j in range(len(idx)):
            per[j]["scores"] = scores[j].tolist()
            per[j]["entropy"] = float(feats[1][j])
        results.extend(per)
    return results


@torch.no_grad()
def text_pass_features(model, processor, encoder, records: list[dict], batch_size: int, device) -> list[dict]:
    """The policy's scores and the answer entropy of the text-only pass (no image is read), per record."""
    tok = processor.tokenizer
    results: list[dict] = []
    for start in range(0, len(records), batch_size):
        encs = [encoder.encode(r, [], "no", with_target=False) for r in records[start:start + batch_size]]
        batch = {k: v.to(device) for k, v in collate(encs, tok.pad_token_id, processor.image_token_id, left_pad=True).items()}
        _, feats = model.text_pass(batch, with_labels=False)
        scores = model.policy_scores(feats).float().cpu()
        results.extend({"scores": scores[j].tolist(), "entropy": float(feats[1][j])} for j in range(len(encs)))
    return results
