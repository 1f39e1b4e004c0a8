"""The two-stage training loop under accelerate (1 process by default; `accelerate launch` for many)."""
from __future__ import annotations

import hashlib
import logging
import math
import shutil
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from vovnet import VovnetError
from vovnet.io_utils import dumps
from vovnet.model.budgets import ACTIONS
from vovnet.model.factory import build_vovnet, save_vovnet
from vovnet.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vovnet.training.stage_data import stage_records
from vovnet.model.encoding import ActionCollator, Encoder, RecordDataset

log = logging.getLogger("vovnet.train")


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


def stage1_action(s1cfg: dict, epoch: int, g: torch.Generator) -> str:
    """The action a stage-1 batch trains: FULL during the warm-up epochs (a from-scratch vision tower
    first learns to see at the budget with the most detail), then a draw from the mix."""
    mix = s1cfg["mix"]
    action = ACTIONS[int(torch.multinomial(torch.tensor([mix[a] for a in ACTIONS]), 1, generator=g))]
    return "full" if epoch < int(s1cfg.get("warmup_epochs") or 0) else action


def epoch_order(n: int, seed: int, stage: int, epoch: int, per_step: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + stage * 1009 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    pad = (-len(order)) % per_step  # every rank gets the same number of batches
    return order + order[:pad]


def run_fingerprint(params: dict) -> str:
    """Checkpoints belong to one configuration + both stages' files; another experiment never resumes them."""
    t = params["train"]
    keep = {k: v for k, v in t.items() if k not in ("resume", "log_every", "save_every", "checkpoint_dir", "output_dir")}
    h = hashlib.sha256(dumps([params["model"], params["policy"], params["vision_budget"], keep]).encode())
    for path in (t["train_file"], t["policy_file"]):
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def param_groups(model, tcfg: dict) -> list[dict]:
    """Language model (LoRA or full weights) at lr, vision tower at vision_lr, policy head at head_lr.

    A from-scratch vision tower needs a higher rate than the LM: otherwise the LM learns the answer
    priors first and the image path never catches up (benchmarks/demo_vision_probe.py measures it)."""
    lm, vision = [], []
    for n, p in model.named_parameters():
        if p.requires_grad and not n.startswith("head."):
            (vision if ".visual." in n else lm).append(p)
    vision_lr = float(tcfg["vision_lr"]) if tcfg.get("vision_lr") is not None else tcfg["lr"]
    head = [p for p in model.head.parameters() if p.requires_grad]
    return [{"params": lm, "lr": tcfg["lr"]}, {"params": head, "lr": tcfg["head_lr"]}, {"params": vision, "lr": vision_lr}]


def to_device(batches: dict, device) -> dict:
    return {a: ({k: v.to(device) for k, v in b.items()} if a in ACTIONS else b) for a, b in batches.items()}


def train(params: dict, accelerator=None) -> dict:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    tcfg, pcfg = params["train"], params["policy"]
    dtype_name = params["model"]["dtype"]
    if accelerator is None:
        from vovnet.model.loading import resolve_dtype

        dt = resolve_dtype(dtype_name)
        mp = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dt, "no")
        accelerator = Accelerator(gradient_accumulation_steps=tcfg["grad_accum"], mixed_precision=mp,
                                  kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    torch.manual_seed(tcfg["seed"])
    if tcfg["cpu_threads"]:
        torch.set_num_threads(tcfg["cpu_threads"])
    stage1_records, stage2_records = stage_records(tcfg)
    model, processor = build_vovnet(params, device=accelerator.device)
    if tcfg["gradient_checkpointing"]:
        model.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.lm.enable_input_require_grads()
    # stage 1: the Instruct model answers every action; stage 2: FULL's prompt is the Thinking model's when it answers
    encoders = {s: Encoder(processor, params["vision_budget"], tcfg["max_length"], model.prompt_order,
                           model.full_template if s == 2 else None) for s in (1, 2)}
    datasets = {1: RecordDataset(stage1_records, encoders[1]), 2: RecordDataset(stage2_records, encoders[2])}
    collator = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)
    world, rank, bs = accelerator.num_processes, accelerator.process_index, tcfg["batch_size"]
    per_step = bs * world
    batches_per_epoch = {s: math.ceil(len(d) / per_step) for s, d in datasets.items()}
    stages = [(1, tcfg["stage1"]["epochs"]), (2, tcfg["stage2"]["epochs"])]
    stage_steps = {s: math.ceil(batches_per_epoch[s] / tcfg["grad_accum"]) * e for s, e in stages}

    state = {"stage": 1, "epoch": 0, "batch": 0, "global_batch": 0, "opt_step": 0}
    ckpt_dir = Path(tcfg["checkpoint_dir"]) / run_fingerprint(params)
    ckpt = latest_checkpoint(ckpt_dir) if tcfg["resume"] == "auto" else None
    optim = None
    if ckpt is not None:
        state, optim = load_checkpoint(ckpt, model)
        torch.set_rng_state(optim["rng"])
        accelerator.print(f"resuming from {ckpt} (stage {state['stage']}, epoch {state['epoch']}, batch {state['batch']})")
    ds_plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if ds_plugin is not None:  # we shard data ourselves, so DeepSpeed learns the micro-batch from us
        ds_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = bs
    live = _live(resume=ckpt is not None) if accelerator.is_main_process else None
    total = sum(batches_per_epoch[s] * e for s, e in stages)
    bar = tqdm(total=total, initial=state["global_batch"], disable=not accelerator.is_main_process, unit="batch")
    summary: dict = {"stages": {}}
    t0, seen = time.time(), 0
    for stage, epochs in stages:
        if stage < state["stage"]:
            continue
        agg: dict[str, float] = {}
        n_agg = 0
        dataset = datasets[stage]
        # each stage wraps (DDP / DeepSpeed) and optimises exactly its own trainable parameters
        model.set_stage(stage, tcfg["stage2"]["train_lora"])
        optimizer, scheduler = stage_optimizer(model, tcfg, stage_steps[stage])
        if optim is not None and stage == state["stage"]:
            optimizer.load_state_dict(optim["optimizer"])
            scheduler.load_state_dict(optim["scheduler"])
        accelerator.free_memory()  # drop the previous stage's wrapper and optimizer
        model_p, optimizer_p = accelerator.prepare(model, optimizer)
        trainable = [p for p in model.parameters() if p.requires_grad]
        for epoch in range(state["epoch"] if stage == state["stage"] else 0, epochs):
            order = epoch_order(len(dataset), tcfg["seed"], stage, epoch, per_step)
            start = state["batch"] if (stage, epoch) == (state["stage"], state["epoch"]) else 0
            mine = order[rank::world][start * bs:]
            loader = DataLoader(Subset(dataset, mine), batch_size=bs, shuffle=False, collate_fn=collator,
                                num_workers=tcfg["num_workers"])
            model_p.train()
            for b, batches in enumerate(loader, start=start):
                gb = state["global_batch"]
                g = torch.Generator().manual_seed(tcfg["seed"] * 7919 + gb)  # per-batch randomness, resumable
                action = stage1_action(tcfg["stage1"], epoch, g)
                with accelerator.accumulate(model_p):
                    out = model_p(to_device(batches, accelerator.device), stage=stage, action=action,
                                  policy_cfg=pcfg, train_lora=tcfg["stage2"]["train_lora"], generator=g,
                                  prefix_reuse=tcfg["prefix_reuse"])
                    loss = out["loss"]
                    if not torch.isfinite(loss):
                        raise VovnetError(
                            f"non-finite loss ({loss.item()}) in stage {stage} at optimizer step {state['opt_step']}: "
                            "lower train.lr, raise train.warmup_ratio, or set model.dtype: float32 "
                            "(fp16 overflow on V100 is the usual cause)")
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(trainable, tcfg["max_grad_norm"])
                        optimizer_p.step()
                        scheduler.step()
                        state["opt_step"] += 1
                    optimizer_p.zero_grad(set_to_none=True)
                seen += bs * world
                state.update(stage=stage, epoch=epoch, batch=b + 1, global_batch=gb + 1)
                vals = {k: (v.detach().tolist() if v.dim() else float(v.detach())) for k, v in out.items()}
                for k, v in vals.items():
                    if k != "actions":
                        agg[k] = agg.get(k, 0.0) + v
                if "actions" in vals:
                    for a, r in zip(ACTIONS, vals["actions"]):
                        agg[f"ratio_{a}"] = agg.get(f"ratio_{a}", 0.0) + r
                n_agg += 1
                bar.update(1)
                bar.set_postfix(stage=stage, loss=f"{vals['loss']:.3f}", sps=f"{seen / (time.time() - t0):.1f}")
                if live is not None:
                    for k, v in vals.items():
                        if k == "actions":
                            for a, r in zip(ACTIONS, v):
                                live.log_metric(f"stage{stage}/ratio_{a}", r)
                        else:
                            live.log_metric(f"stage{stage}/{k}", v)
                    live.log_metric("lr", scheduler.get_last_lr()[0])
                    live.next_step()
                if accelerator.sync_gradients and state["opt_step"] % tcfg["log_every"] == 0:
                    accelerator.print(_log_line(stage, state["opt_step"], vals, scheduler.get_last_lr()[0]))
                if accelerator.sync_gradients and state["opt_step"] % tcfg["save_every"] == 0 and accelerator.is_main_process:
                    save_checkpoint(ckpt_dir, state["opt_step"], accelerator.unwrap_model(model_p),
                                    optimizer_p.optimizer if hasattr(optimizer_p, "optimizer") else optimizer_p,
                                    scheduler, state)
            state["batch"] = 0
        state["epoch"] = 0
        summary["stages"][f"stage{stage}"] = {k: v / max(1, n_agg) for k, v in agg.items()}
        state["stage"] = stage + 1
    bar.close()
    accelerator.wait_for_everyone()
    summary.update(optimizer_steps=state["opt_step"], batches=state["global_batch"],
                   records={f"stage{s}": len(d) for s, d in datasets.items()},
                   processes=world, seconds=round(time.time() - t0, 2),
                   samples_per_second=round(seen / max(1e-9, time.time() - t0), 2))
    if accelerator.is_main_process:
        save_vovnet(accelerator.unwrap_model(model_p), processor, params, tcfg["output_dir"])
        if live is not None:
            live.end()
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # the run is complete; its outputs are in output_dir
    return summary


def _log_line(stage: int, step: int, vals: dict, lr: float) -> str:
    parts = [f"stage {stage} step {step}", f"lr {lr:.2e}"] + [
        f"{k} {v:.4f}" for k, v in vals.items() if k != "actions"]
    if "actions" in vals:
        parts.append("actions " + "/".join(f"{a}={r:.2f}" for a, r in zip(ACTIONS, vals["actions"])))
    return ", ".join(parts)


def _live(resume: bool):
    from dvclive import Live

    return Live(dir="dvclive/train", resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)
