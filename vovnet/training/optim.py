"""Each stage's optimizer: AdamW over exactly what the stage trains, in three learning-rate groups, and
its own warm-up and decay."""

from __future__ import annotations

import math

import torch


def stage_lr_lambda(n: int, warmup_ratio: float, kind: str):
    """One stage's schedule: warm up, then decay over its own `n` optimizer steps."""
    warm = max(1, int(warmup_ratio * n))

    def f(step: int) -> float:
        if step >= n:
            return 0.0
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, n - warm)
        return 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else max(0.0, 1 - progress)

    return f


def stage_optimizer(model, tcfg: dict, steps: int):
    """AdamW and its schedule over exactly what this stage trains (model.set_stage ran before): a part
    frozen in this stage is in no group, so no optimizer (DeepSpeed's included) moves it."""
    groups = [g for g in param_groups(model, tcfg) if g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=tcfg["weight_decay"])
    lr = stage_lr_lambda(steps, tcfg["warmup_ratio"], tcfg["scheduler"])
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr)


def param_groups(model, tcfg: dict) -> list[dict]:
    """Language model (LoRA or full weights) at lr, vision tower at vision_lr, policy head at head_lr.

    A from-scratch vision tower needs a higher rate than the LM: otherwise the LM learns the answer
    priors first and the image path never catches up (benchmarks/probes/demo_vision_probe.py measures it)."""
    lm, vision = [], []
    for n, p in model.named_parameters():
        if p.requires_grad and not n.startswith("head."):
            (vision if ".visual." in n else lm).append(p)
    vision_lr = float(tcfg["vision_lr"]) if tcfg.get("vision_lr") is not None else tcfg["lr"]
    head = [p for p in model.head.parameters() if p.requires_grad]
    return [
        {"params": lm, "lr": tcfg["lr"]},
        {"params": head, "lr": tcfg["head_lr"]},
        {"params": vision, "lr": vision_lr},
    ]
