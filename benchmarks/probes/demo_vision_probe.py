"""Does a small from-scratch Qwen3-VL learn to see? Stage-1 style full fine-tune on the generated demo set,
then greedy accuracy per question family and per vision action on a disjoint split.

Standalone (no DVC): `python benchmarks/probes/demo_vision_probe.py --steps 600 --vision-lr 3e-3`.
Prints one table: family x action accuracy, plus seconds. Used to choose the demo preset's model and
learning rates on the generator's `policy` split (never the held-out split).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from vovnet.model import prompts
from vovnet.model.budgets import ACTIONS
from vovnet.model.encoding import Encoder, collate
from vovnet.model.tiny import build_tiny_model
from vovnet.tasks.shapes_vqa import adapter as shapes_vqa


def as_record(item: dict) -> dict:
    label = item["choices"].index(item["answer"]) if item["choices"] else None
    return {
        "id": item["key"],
        "question": item["question"],
        "hint": item["hint"],
        "choices": item["choices"],
        "answer": {"label": label, "text": item["answer"], "all": [item["answer"]]},
        "meta": item["meta"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vision-lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vision-hidden", type=int, default=64)
    ap.add_argument("--vision-depth", type=int, default=2)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--coarse-pixels", type=int, default=256)
    ap.add_argument("--train", type=int, default=1800)
    ap.add_argument("--eval", type=int, default=240)
    ap.add_argument("--mix", default="0.2,0.2,0.6", help="no,coarse,full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--open-fraction", type=float, default=0.5, help="the demo preset uses 0.75")
    ap.add_argument("--families", default=",".join(shapes_vqa.FAMILIES), help="train and evaluate only these")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    spec = {
        **shapes_vqa.SPEC_DEFAULTS,
        "image_size": args.image_size,
        "open_fraction": args.open_fraction,
        "sizes": {"train": args.train, "policy": args.eval, "heldout": 0},
    }
    data = shapes_vqa.generate(json.dumps(spec, sort_keys=True))
    fams = args.families.split(",")
    data = {k: [x for x in v if x["meta"]["family"] in fams] for k, v in data.items()}
    tmp = Path(tempfile.mkdtemp())
    tiny = {
        "hidden_size": args.hidden,
        "layers": args.layers,
        "vision_depth": args.vision_depth,
        "vocab_size": 1024,
        "seed": 0,
        "vision_hidden_size": args.vision_hidden,
        "patch_size": args.patch,
        "vision_positions": max(16, (args.image_size // args.patch) ** 2),
    }
    build_tiny_model(tmp / "m", {"tiny": tiny}, shapes_vqa.vocabulary())
    model = AutoModelForImageTextToText.from_pretrained(tmp / "m", dtype=torch.float32)
    proc = AutoProcessor.from_pretrained(tmp / "m")
    full_px = args.image_size**2
    budgets = {
        "coarse": {"min_pixels": args.coarse_pixels, "max_pixels": args.coarse_pixels},
        "full": {"min_pixels": full_px, "max_pixels": full_px},
    }
    enc = Encoder(proc, budgets, 512)

    def encode(split, with_target):
        out = []
        for item in data[split]:
            rec = as_record(item)
            out.append((rec, enc.encode_all(rec, [Image.open(io.BytesIO(item["png"])).convert("RGB")], with_target)))
        return out

    t0 = time.time()
    train, held = encode("train", True), encode("policy", False)
    vision = [p for n, p in model.named_parameters() if ".visual." in n]
    rest = [p for n, p in model.named_parameters() if ".visual." not in n]
    opt = torch.optim.AdamW(
        [{"params": rest, "lr": args.lr}, {"params": vision, "lr": args.vision_lr}], weight_decay=0.0
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / args.steps))
    mix = torch.tensor([float(x) for x in args.mix.split(",")])
    g = torch.Generator().manual_seed(0)
    rnd = random.Random(0)
    pad, img = proc.tokenizer.pad_token_id, proc.image_token_id
    model.train()
    for step in range(args.steps):
        action = ACTIONS[int(torch.multinomial(mix, 1, generator=g))]
        batch = collate([e[action] for _, e in rnd.sample(train, args.batch)], pad, img)
        batch.pop("last_prompt_index"), batch.pop("vision_tokens")
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step(), opt.zero_grad()
        if step % 50 == 0:
            print(f"step {step} {action} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    train_s = time.time() - t0
    model.eval()
    eos = proc.tokenizer.convert_tokens_to_ids("<|im_end|>")
    acc: dict = {}
    with torch.no_grad():
        for action in ACTIONS:
            for i in range(0, len(held), 32):
                chunk = held[i : i + 32]
                batch = collate([e[action] for _, e in chunk], pad, img, left_pad=True)
                inputs = {
                    k: v
                    for k, v in batch.items()
                    if k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
                }
                out = model.generate(**inputs, max_new_tokens=4, do_sample=False, eos_token_id=eos, pad_token_id=pad)
                texts = proc.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
                if i == 0:
                    print(action, [(prompts.target(r), t) for (r, _), t in zip(chunk[:6], texts)])
                for (rec, _), t in zip(chunk, texts):
                    key = (rec["meta"]["family"], action)
                    ok = t.strip().lower() == prompts.target(rec).lower()
                    acc.setdefault(key, []).append(ok)
                    acc.setdefault((rec["meta"]["format"], action), []).append(ok)
    print(f"train {train_s:.0f}s, {args}")
    print("family  " + "  ".join(f"{a:>7}" for a in ACTIONS))
    for fam in fams:
        print(f"{fam:7} " + "  ".join(f"{sum(acc[(fam, a)]) / len(acc[(fam, a)]):7.3f}" for a in ACTIONS))
    for fmt in [f for f in ("open", "mc") if (f, "no") in acc]:
        print(f"{fmt:7} " + "  ".join(f"{sum(acc[(fmt, a)]) / len(acc[(fmt, a)]):7.3f}" for a in ACTIONS))
    overall = {a: sum(sum(acc[(f, a)]) for f in fams) / len(held) for a in ACTIONS}
    print("overall " + "  ".join(f"{overall[a]:7.3f}" for a in ACTIONS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
