"""The two-stage training recipe under accelerate: one process, or many under `python -m vovnet.launch`.

`train` reads top to bottom: setup, resume, stage 1, stage 2, save. Each optimizer step runs the same
samples in the same micro-batches whatever the number of processes (vovnet/training/batching.py)."""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from vovnet import VovnetError
from vovnet.launch import BatchPlan, batch_plan, process_state
from vovnet.model.budgets import ACTIONS
from vovnet.model.encoding import ActionCollator, Encoder, RecordDataset
from vovnet.model.factory import build_vovnet, save_vovnet
from vovnet.resume import EngineInfo, latest_checkpoint, run_checkpoints
from vovnet.training.batching import epoch_order, process_micro_batches
from vovnet.training.checkpoint import (
    Checkpoint,
    load_engine_state,
    load_weights,
    read_checkpoint,
    restore_rng,
    save_checkpoint,
)
from vovnet.training.engine import (
    clipping,
    configure_deepspeed,
    deepspeed_engine,
    engine_info,
    full_precision_weights,
    master_weights,
    planned_engine,
    restore_fp32_vision,
    set_master_weights,
    set_weights,
)
from vovnet.training.optim import stage_optimizer
from vovnet.training.stage_data import stage_records

log = logging.getLogger("vovnet.train")


def stage1_action(s1cfg: dict, epoch: int, g: torch.Generator) -> str:
    """The action a stage-1 batch trains: FULL during the warm-up epochs (a from-scratch vision tower
    first learns to see at the budget with the most detail), then a draw from the mix."""
    mix = s1cfg["mix"]
    action = ACTIONS[int(torch.multinomial(torch.tensor([mix[a] for a in ACTIONS]), 1, generator=g))]
    return "full" if epoch < int(s1cfg.get("warmup_epochs") or 0) else action


def to_device(batches: dict, device) -> dict:
    return {a: ({k: v.to(device) for k, v in b.items()} if a in ACTIONS else b) for a, b in batches.items()}


@dataclass
class Run:
    """What every step of one training run shares."""

    params: dict
    accelerator: object
    plan: BatchPlan
    model: object  # the VoVNet, unwrapped
    processor: object
    datasets: dict[int, RecordDataset]
    collator: ActionCollator
    stage_steps: dict[int, int]  # optimizer steps per stage
    ckpt_dir: Path
    state: dict = field(default_factory=lambda: {"stage": 1, "epoch": 0, "step": 0, "opt_step": 0})
    resumed: Checkpoint | None = None  # the checkpoint's optimizer state, for its stage, used once
    live: object | None = None
    wrapped: object | None = None  # the current stage's prepared model (DDP / DeepSpeed)
    engine: EngineInfo | None = None  # what runs the current stage, read from the engine
    # fp32 trained weights as earlier stages ended (DeepSpeed: the module holds half copies of them)
    finished: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.time)
    samples_seen: int = 0

    @property
    def tcfg(self) -> dict:
        return self.params["train"]


@dataclass
class StageTools:
    model: object  # prepared for this stage
    optimizer: object
    scheduler: object

    @property
    def trainable(self) -> list:
        return [p for p in self.model.parameters() if p.requires_grad]


def train(params: dict, accelerator=None) -> tuple[dict, dict]:
    """The recipe: set up, resume, stage 1 (the LM's branches), stage 2 (the policy head), save.

    Returns the run's figures, which depend only on params, code and data (metrics/train.json, hashed into
    dvc.lock), and how this launch ran it: processes, per-process batch, seconds (a log, not a DVC output)."""
    run = setup(params, accelerator)
    resume(run)
    summary: dict = {"stages": {}}
    for stage, epochs in ((1, run.tcfg["stage1"]["epochs"]), (2, run.tcfg["stage2"]["epochs"])):
        if stage >= run.state["stage"]:
            summary["stages"][f"stage{stage}"] = train_stage(run, stage, epochs)
    return save(run, summary)


def setup(params: dict, accelerator=None) -> Run:
    """The batch plan for this world size, the accelerator, the model and both stages' data."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    from vovnet.model.loading import resolve_dtype

    tcfg = params["train"]
    world = accelerator.num_processes if accelerator is not None else process_state().num_processes
    plan = batch_plan(tcfg["batch_size"], tcfg["micro_batch_size"], world)
    if accelerator is None:
        mp = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(resolve_dtype(params["model"]["dtype"]), "no")
        accelerator = Accelerator(
            gradient_accumulation_steps=plan.accumulation,
            mixed_precision=mp,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
    torch.manual_seed(tcfg["seed"])
    if tcfg["cpu_threads"]:
        torch.set_num_threads(tcfg["cpu_threads"])
    stage1_records, stage2_records = stage_records(tcfg)
    model, processor = build_vovnet(params, device=accelerator.device)
    master_weights(accelerator, model, params["model"])
    if tcfg["gradient_checkpointing"]:
        model.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.lm.enable_input_require_grads()
    # stage 1: the Instruct model answers every action; stage 2: FULL's prompt is the Thinking model's when it answers
    encoders = {
        s: Encoder(
            processor,
            params["vision_budget"],
            tcfg["max_length"],
            model.prompt_order,
            model.full_template if s == 2 else None,
        )
        for s in (1, 2)
    }
    datasets = {1: RecordDataset(stage1_records, encoders[1]), 2: RecordDataset(stage2_records, encoders[2])}
    epochs = {1: tcfg["stage1"]["epochs"], 2: tcfg["stage2"]["epochs"]}
    stage_steps = {s: math.ceil(len(d) / plan.batch) * epochs[s] for s, d in datasets.items()}
    configure_deepspeed(accelerator, plan, tcfg)
    log.info(
        "train: process %d of %d on %s: %d micro-batch(es) of %d per optimizer step of %d",
        accelerator.process_index,
        plan.processes,
        accelerator.device,
        plan.accumulation,
        plan.micro,
        plan.batch,
    )
    collator = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)
    ckpt_dir = run_checkpoints(params)
    return Run(params, accelerator, plan, model, processor, datasets, collator, stage_steps, ckpt_dir)


def resume(run: Run) -> None:
    """Continue from this configuration's latest checkpoint (a whole optimizer step), if any: its weights
    now, its optimizer state when its stage is prepared."""
    path = latest_checkpoint(run.ckpt_dir) if run.tcfg["resume"] == "auto" else None
    if path is not None:
        ckpt = read_checkpoint(path, planned_engine(run.accelerator, run.plan.processes))
        load_weights(run.model, ckpt.weights, path)
        run.state, run.resumed, run.finished = ckpt.state, ckpt, dict(ckpt.weights)
        restore_rng(path, run.accelerator.process_index)
        s = run.state
        run.accelerator.print(f"resuming from {path} (stage {s['stage']}, epoch {s['epoch']}, step {s['step']})")
    if run.accelerator.is_main_process:
        run.live = _live(resume=path is not None)


def prepare_stage(run: Run, stage: int) -> StageTools:
    """Wrap (DDP / DeepSpeed) and optimise exactly what this stage trains."""
    acc = run.accelerator
    run.model.set_stage(stage, run.tcfg["stage2"]["train_lora"])
    optimizer, scheduler = stage_optimizer(run.model, run.tcfg, run.stage_steps[stage])
    resumed = run.resumed if run.resumed is not None and stage == run.state["stage"] else None
    run.resumed = None  # a later stage starts its own optimizer
    if resumed is not None:
        scheduler.load_state_dict(resumed.extra["scheduler"])
        if "optimizer" in resumed.extra:  # plain torch; DeepSpeed's is loaded into the engine below
            optimizer.load_state_dict(resumed.extra["optimizer"])
    # every rank is done with the previous engine's collectives (its end-of-stage gathers) before any
    # rank tears its process groups down; a rank destroying a group another still reduces on aborts
    acc.wait_for_everyone()
    acc.free_memory()  # drop the previous stage's wrapper and optimizer
    model_p, optimizer_p = acc.prepare(run.model, optimizer)
    run.wrapped, run.engine = model_p, engine_info(model_p, run.plan.processes)
    restore_fp32_vision(run.engine, acc, run.model)
    if run.engine.name == "deepspeed" and run.finished:
        set_master_weights(model_p, run.model, run.finished)
    log.info(
        "train: stage %d runs on %s%s (process %d)", stage, run.engine.describe(), clipping(model_p), acc.process_index
    )
    if resumed is not None and deepspeed_engine(model_p) is not None:
        load_engine_state(model_p, resumed.path)
    elif resumed is not None and "scaler" in resumed.extra and acc.scaler is not None:
        acc.scaler.load_state_dict(resumed.extra["scaler"])
    return StageTools(model_p, optimizer_p, scheduler)


def train_stage(run: Run, stage: int, epochs: int) -> dict:
    """One stage's epochs of optimizer steps; returns its metrics averaged over its steps."""
    tools = prepare_stage(run, stage)
    totals: dict[str, float] = {}
    steps = 0
    first_epoch = run.state["epoch"] if stage == run.state["stage"] else 0
    for epoch in range(first_epoch, epochs):
        first_step = run.state["step"] if (stage, epoch) == (run.state["stage"], run.state["epoch"]) else 0
        tools.model.train()
        for step, micro in enumerate(epoch_steps(run, stage, epoch, first_step), start=first_step + 1):
            vals = optimizer_step(run, tools, stage, epoch, micro)
            run.state.update(stage=stage, epoch=epoch, step=step, opt_step=run.state["opt_step"] + 1)
            run.samples_seen += run.plan.batch
            for k, v in vals.items():
                totals[k] = totals.get(k, 0.0) + v
            steps += 1
            report_step(run, stage, vals, tools.scheduler.get_last_lr()[0])
            if run.state["opt_step"] % run.tcfg["save_every"] == 0:
                checkpoint(run, tools)
    if deepspeed_engine(run.wrapped) is not None:  # the fp32 weights as the stage ends, for the next engine
        run.finished = trained_weights(run)
    run.state.update(stage=stage + 1, epoch=0, step=0)
    return {k: v / max(1, steps) for k, v in totals.items()}


def trained_weights(run: Run) -> dict[str, torch.Tensor]:
    """Every weight the run trains, fp32 and whole: what the engine holds now (its fp32 masters for what
    this stage trains), over what earlier stages ended with. Every process calls it (ZeRO-3 gathers)."""
    names = sorted(run.model.trained_names)
    if deepspeed_engine(run.wrapped) is None:
        return full_precision_weights(run.model, names, None) if run.accelerator.is_main_process else {}
    trains_now = {n for n, p in run.model.named_parameters() if p.requires_grad}
    live = [n for n in names if n in trains_now or n not in run.finished]
    return {**run.finished, **full_precision_weights(run.model, live, run.wrapped)}


def checkpoint(run: Run, tools: StageTools) -> None:
    """Every process takes part (DeepSpeed saves each rank's optimizer partition); see training/checkpoint.py."""
    acc, ds = run.accelerator, deepspeed_engine(tools.model)
    extra = {"scheduler": tools.scheduler.state_dict()}
    if ds is None:
        extra["optimizer"] = getattr(tools.optimizer, "optimizer", tools.optimizer).state_dict()
        if acc.scaler is not None:
            extra["scaler"] = acc.scaler.state_dict()
    save_checkpoint(
        run.ckpt_dir,
        run.state["opt_step"],
        weights=trained_weights(run),
        extra=extra,
        state=run.state,
        engine=run.engine,
        main=acc.is_main_process,
        wait=acc.wait_for_everyone,
        rank=acc.process_index,
        ds_engine=ds,
    )


def epoch_steps(run: Run, stage: int, epoch: int, first_step: int):
    """This process's micro-batches of one epoch, grouped by optimizer step: [(record indices, batches), ...]."""
    dataset, plan = run.datasets[stage], run.plan
    order = epoch_order(len(dataset), run.tcfg["seed"], stage, epoch, plan.batch)
    micro = process_micro_batches(order, plan, run.accelerator.process_index, first_step)
    loader = DataLoader(dataset, batch_sampler=micro, collate_fn=run.collator, num_workers=run.tcfg["num_workers"])
    group = []
    for indices, batches in zip(micro, loader):
        group.append((indices, batches))
        if len(group) == plan.accumulation:
            yield group
            group = []


def optimizer_step(run: Run, tools: StageTools, stage: int, epoch: int, micro: list) -> dict:
    """One optimizer step over this process's micro-batches; its metrics averaged over every process."""
    tcfg, acc = run.tcfg, run.accelerator
    step = run.state["opt_step"]
    # the step's randomness depends on the step and the slot, never on which process runs it
    action = stage1_action(tcfg["stage1"], epoch, torch.Generator().manual_seed(tcfg["seed"] * 7919 + step))
    per_micro = []
    for a, (indices, batches) in enumerate(micro):
        slot = a * run.plan.processes + acc.process_index
        with acc.accumulate(tools.model):
            out = tools.model(
                to_device(batches, acc.device),
                stage=stage,
                action=action,
                policy_cfg=run.params["policy"],
                train_lora=tcfg["stage2"]["train_lora"],
                generator=slot_generator(tcfg["seed"], step, slot),
                prefix_reuse=tcfg["prefix_reuse"],
                vision_focus=tcfg["stage1"]["vision_focus"],
            )
            check_finite_loss(out["loss"], run, stage, action, indices)
            acc.backward(out["loss"])
            if acc.sync_gradients:
                apply_step(acc, tools, tcfg["max_grad_norm"])
            tools.optimizer.zero_grad(set_to_none=True)
        per_micro.append(step_values(out))
    local = torch.tensor(per_micro, dtype=torch.float64).mean(0).to(acc.device)
    mean = acc.reduce(local, reduction="mean") if run.plan.processes > 1 else local
    return dict(zip(metric_names(out), mean.tolist()))


def apply_step(acc, tools: StageTools, max_grad_norm: float) -> bool:
    """Clip, step, and advance the schedule unless the loss scaler skipped the step (non-finite gradients:
    GradScaler, or DeepSpeed's overflow check); returns whether it was skipped. Under DeepSpeed the engine
    clips (gradient_clipping = train.max_grad_norm) and steps inside accelerate's backward."""
    acc.clip_grad_norm_(tools.trainable, max_grad_norm)
    tools.optimizer.step()
    skipped = bool(tools.optimizer.step_was_skipped)
    if not skipped:
        tools.scheduler.step()
    return skipped


def slot_generator(seed: int, step: int, slot: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 7919 + step) * 4099 + slot)


def metric_names(out: dict) -> list[str]:
    return [n for k in sorted(out) for n in ([f"ratio_{a}" for a in ACTIONS] if k == "actions" else [k])]


def step_values(out: dict) -> list[float]:
    """`out`'s metrics flattened in metric_names order (the action ratios as three values)."""
    vals = []
    for k in sorted(out):
        v = out[k].detach().float()
        vals.extend(v.tolist() if v.dim() else [float(v)])
    return vals


def check_finite_loss(loss: torch.Tensor, run: Run, stage: int, action: str, indices: list[int]) -> None:
    if torch.isfinite(loss):
        return
    ids = [run.datasets[stage].records[i]["id"] for i in indices]
    branch = f"action {action}" if stage == 1 else "every action (the policy's branches)"
    raise VovnetError(
        f"non-finite loss ({loss.item()}) in stage {stage}, {branch}, at optimizer step {run.state['opt_step']}, "
        f"records {', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''}: lower train.lr, raise train.warmup_ratio, "
        "or, for fp16 overflow (the usual cause on V100) under ZeRO-3, whose vision tower runs in fp16, use "
        "configs/accelerate/zero2_v100.yaml (the tower stays fp32; 32 GB cards); model.dtype: float32 needs "
        "a GPU that holds the whole fp32 model for evaluate@ (`python -m vovnet plan --dtype float32`)"
    )


def report_step(run: Run, stage: int, vals: dict, lr: float) -> None:
    """dvclive (main process) every step, a log line every train.log_every steps."""
    step = run.state["opt_step"]
    if run.live is not None:
        for k, v in vals.items():
            run.live.log_metric(f"stage{stage}/{k}", v)
        run.live.log_metric("lr", lr)
        run.live.next_step()
    if step % run.tcfg["log_every"] == 0:
        sps = run.samples_seen / max(1e-9, time.time() - run.t0)
        run.accelerator.print(f"{_log_line(stage, step, vals, lr)}, samples/s {sps:.1f}")


def save(run: Run, summary: dict) -> tuple[dict, dict]:
    """The trained model (main process), the run's figures and launch facts, and the checkpoints removed."""
    acc = run.accelerator
    acc.wait_for_everyone()
    elapsed = max(1e-9, time.time() - run.t0)
    summary.update(
        optimizer_steps=run.state["opt_step"],
        records={f"stage{s}": len(d) for s, d in run.datasets.items()},
        global_batch=run.plan.batch,
    )
    launch_facts = {
        **run.plan.as_metrics(),
        "seconds": round(elapsed, 2),
        "samples_per_second": round(run.samples_seen / elapsed, 2),
    }
    weights = trained_weights(run)  # every process: ZeRO-3 gathers
    if acc.is_main_process:
        set_weights(run.model, weights)
        save_vovnet(run.model, run.processor, run.params, run.tcfg["output_dir"])
        if run.live is not None:
            run.live.end()
        shutil.rmtree(run.ckpt_dir, ignore_errors=True)  # the run is complete; its outputs are in output_dir
    return summary, launch_facts


def _log_line(stage: int, step: int, vals: dict, lr: float) -> str:
    return ", ".join([f"stage {stage} step {step}", f"lr {lr:.2e}", *(f"{k} {v:.4f}" for k, v in vals.items())])


def _live(resume: bool):
    from dvclive import Live

    return Live(dir="dvclive/train", resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)
