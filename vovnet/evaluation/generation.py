"""Greedy generation for every action of every question (batched, left padding, no teacher forcing).

Generating all three actions once lets the learned policy, every baseline and every Pareto point be
scored on the same real outputs: a policy is then just a choice of action per question.
"""
from __future__ import annotations

import time

import torch
from tqdm import tqdm

from vovnet.model.budgets import ACTIONS
from vovnet.model.vovnet import model_inputs
from vovnet.model.encoding import RecordDataset, collate


@torch.no_grad()
def generate_all(model, processor, dataset: RecordDataset, batch_size: int, max_new_tokens: int, device) -> list[dict]:
    tok = processor.tokenizer
    pad_id, image_id = tok.pad_token_id, processor.image_token_id
    eos_id = tok.convert_tokens_to_ids("<|im_end|>")
    results: list[dict] = []
    for start in tqdm(range(0, len(dataset), batch_size), unit="batch", desc="generate"):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        encs = [dataset[i] for i in idx]
        per = [{"outputs": {}, "latency": {}, "vision_tokens": {}} for _ in idx]
        # Text-only pass: the policy's features and action scores.
        t0 = time.perf_counter()
        text_batch = {k: v.to(device) for k, v in collate([e["no"] for e in encs], pad_id, image_id, left_pad=True).items()}
        _, feats = model.text_pass(text_batch, with_labels=False)
        scores = model.policy_scores(feats).float().cpu()
        policy_time = (time.perf_counter() - t0) / len(idx)
        for action in ACTIONS:
            batch = {k: v.to(device) for k, v in collate([e[action] for e in encs], pad_id, image_id, left_pad=True).items()}
            t1 = time.perf_counter()
            out = model.lm_for(action).generate(**model_inputs(batch, with_labels=False), max_new_tokens=max_new_tokens,
                                                do_sample=False, eos_token_id=eos_id, pad_token_id=pad_id)
            gen_time = (time.perf_counter() - t1) / len(idx)
            texts = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            for j, text in enumerate(texts):
                per[j]["outputs"][action] = text.strip()
                # NO continues from the text pass itself; vision actions pay the text pass and then their own run.
                per[j]["latency"][action] = gen_time + (policy_time if action != "no" else 0.0)
                per[j]["vision_tokens"][action] = int(encs[j][action]["vision_tokens"])
        for j in range(len(idx)):
            per[j]["scores"] = scores[j].tolist()
            per[j]["entropy"] = float(feats[1][j])
        results.extend(per)
    return results
