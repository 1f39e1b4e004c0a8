"""Does the preset's from-scratch model learn to see its data? Stage-1 style training on `train.train_file`,
then greedy accuracy per question family and per vision action on the first records of `train.policy_file`
(the split every choice is made on; never the held-out split).

Reads params.yaml (model.tiny, vision_budget, train.lr / vision_lr / batch_size) after `dvc repro` has built
the processed files and the tiny model. Overrides for the candidates the probe measures:

    python benchmarks/probes/vision_probe.py --steps 900 --mix 0,0,1 --every 300
    python benchmarks/probes/vision_probe.py --gradients      # where one FULL batch's answer loss reaches

Prints one table per checkpoint (family x action accuracy) and the seconds it took.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import defaultdict

import torch

from vovnet.config import load_params
from vovnet.evaluation.vqa_answers import normalize
from vovnet.io_utils import read_jsonl
from vovnet.model.budgets import ACTIONS
from vovnet.model.encoding import Encoder, RecordDataset, collate
from vovnet.model.losses import answer_token_nll, vision_focus_loss
from vovnet.model.tiny import TINY_MODEL_DIR, build_tiny_model
from vovnet.tasks.shapes_vqa import adapter as shapes_vqa

GENERATE_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")


def load(params: dict, budgets: dict, tiny: dict):
    """The `model` stage's tiny model, or one built here when `tiny` overrides model.tiny."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = TINY_MODEL_DIR
    if tiny:
        folder = tempfile.mkdtemp()
        build_tiny_model(folder, {"tiny": {**params["model"]["tiny"], **tiny}}, shapes_vqa.vocabulary())
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(folder)
    encoder = Encoder(processor, budgets, params["train"]["max_length"], params["model"]["prompt_order"])
    return model, processor, encoder


def accuracy(model, processor, data: RecordDataset, n: int) -> dict:
    """{(family, action): accuracy} over the first n records, greedy, 4 new tokens."""
    tok = processor.tokenizer
    eos, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id
    hits = defaultdict(list)
    model.eval()
    with torch.no_grad():
        for start in range(0, n, 32):
            idx = range(start, min(n, start + 32))
            enc = [data[i] for i in idx]
            for action in ACTIONS:
                batch = collate([e[action] for e in enc], pad, processor.image_token_id, left_pad=True)
                inputs = {k: v for k, v in batch.items() if k in GENERATE_KEYS}
                out = model.generate(**inputs, max_new_tokens=4, do_sample=False, eos_token_id=eos, pad_token_id=pad)
                texts = tok.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
                for i, text in zip(idx, texts):
                    rec = data.records[i]
                    ok = normalize(text.strip().split("\n")[0]) == normalize(rec["answer"]["text"])
                    hits[(rec["meta"]["family"], action)].append(ok)
                    hits[("all", action)].append(ok)
    model.train()
    return {k: sum(v) / len(v) for k, v in hits.items()}


def print_table(acc: dict, step: int, seconds: float) -> None:
    families = sorted({f for f, _ in acc} - {"all"}) + ["all"]
    print(f"\nafter {step} steps ({seconds:.0f} s)\nfamily    " + "  ".join(f"{a:>7}" for a in ACTIONS))
    for fam in families:
        print(f"{fam:9} " + "  ".join(f"{acc[(fam, a)]:7.3f}" for a in ACTIONS))


def gradients(model, processor, data: RecordDataset, batch: int) -> None:
    """Grad norm per vision part from one FULL batch's answer-token loss (the labels mask the prompt)."""
    enc = [data[i] for i in range(batch)]
    b = collate([e["full"] for e in enc], processor.tokenizer.pad_token_id, processor.image_token_id)
    b.pop("last_prompt_index", None), b.pop("vision_tokens", None)
    model.zero_grad()
    model(**b).loss.backward()
    norms = defaultdict(float)
    for name, p in model.named_parameters():
        if ".visual." in name and p.grad is not None:
            part = name.split(".visual.")[1].split(".")[0]
            norms[part] += float(p.grad.norm()) ** 2
    total = sum(float(p.grad.norm()) ** 2 for p in model.parameters() if p.grad is not None)
    print("vision part      grad norm   share of the model's squared grad norm")
    for part, sq in sorted(norms.items()):
        print(f"{part:16} {sq**0.5:9.2e}   {sq / total:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=0, help="also report every N steps (0: at the end only)")
    ap.add_argument("--mix", default="0,0,1", help="no,coarse,full shares of the steps (default FULL only)")
    ap.add_argument("--eval", type=int, default=400, help="policy-split records scored")
    ap.add_argument("--full-pixels", type=int, help="override vision_budget.full (min = max)")
    ap.add_argument("--lr", type=float, help="override train.lr")
    ap.add_argument("--vision-lr", type=float, help="override train.vision_lr")
    ap.add_argument("--tiny", default="", help="model.tiny overrides, e.g. vision_hidden_size=128,vision_depth=4")
    ap.add_argument("--families", help="train and score only these meta.family values, comma-separated")
    ap.add_argument("--focus", action="store_true", help="train.stage1.vision_focus on vision steps")
    ap.add_argument("--gradients", action="store_true")
    args = ap.parse_args()
    params = load_params(args.params)
    tcfg = params["train"]
    torch.set_num_threads(max(1, tcfg["cpu_threads"]))
    torch.manual_seed(tcfg["seed"])
    budgets = {k: dict(v) for k, v in params["vision_budget"].items()}
    if args.full_pixels:
        budgets["full"] = {"min_pixels": args.full_pixels, "max_pixels": args.full_pixels}
    tiny = {k: int(v) for k, v in (kv.split("=") for kv in args.tiny.split(",") if kv)}
    model, processor, encoder = load(params, budgets, tiny)
    keep = set(args.families.split(",")) if args.families else None

    def records(path: str) -> list[dict]:
        return [r for r in read_jsonl(path) if keep is None or r["meta"]["family"] in keep]

    train = RecordDataset(records(tcfg["train_file"]), encoder)
    held = RecordDataset(records(tcfg["policy_file"]), encoder, with_target=False)
    if args.gradients:
        gradients(model, processor, train, tcfg["batch_size"])
        return 0
    lr, vision_lr = args.lr or tcfg["lr"], args.vision_lr or tcfg["vision_lr"] or tcfg["lr"]
    vision = [p for n, p in model.named_parameters() if ".visual." in n]
    rest = [p for n, p in model.named_parameters() if ".visual." not in n]
    opt = torch.optim.AdamW([{"params": rest, "lr": lr}, {"params": vision, "lr": vision_lr}], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    mix = torch.tensor([float(x) for x in args.mix.split(",")])
    g, rnd = torch.Generator().manual_seed(0), random.Random(0)
    pad, img = processor.tokenizer.pad_token_id, processor.image_token_id
    t0 = time.time()
    model.train()
    for step in range(1, args.steps + 1):
        action = ACTIONS[int(torch.multinomial(mix, 1, generator=g))]
        picked = [train[i] for i in rnd.sample(range(len(train)), tcfg["batch_size"])]
        batch = collate([e[action] for e in picked], pad, img)
        batch.pop("last_prompt_index", None), batch.pop("vision_tokens", None)
        if args.focus and action != "no":
            text = collate([e["no"] for e in picked], pad, img)
            labels, text_labels = batch.pop("labels"), text.pop("labels")
            text.pop("last_prompt_index"), text.pop("vision_tokens")
            with torch.no_grad():
                text_nll = answer_token_nll(model(**text).logits, text_labels)
            loss = vision_focus_loss(answer_token_nll(model(**batch).logits, labels), text_nll)  # as VoVNet._focused
        else:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg["max_grad_norm"])
        opt.step(), sched.step(), opt.zero_grad()
        if step == args.steps or (args.every and step % args.every == 0):
            print_table(accuracy(model, processor, held, min(args.eval, len(held))), step, time.time() - t0)
    print(f"\n{args}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
