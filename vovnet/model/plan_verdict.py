"""Whether the configured launch, evaluation and predict fit, as one line each that names the largest term and
the cheapest change that fits: first what changes memory only (checkpointing, a ZeRO stage, the inference
batch), then what changes what is trained or scored (max_length)."""

from __future__ import annotations

import copy

from vovnet.launch_configs import deepspeed_settings, uses_deepspeed
from vovnet.model.plan_inference import InferenceRow
from vovnet.model.plan_memory import (
    ACCELERATE_CONFIGS,
    GIB,
    HEADROOM,
    STRATEGIES,
    Plan,
    Row,
    inference_rows,
    make_plan,
)

MAX_HALVINGS = 3  # of max_length: beyond an eighth the run is another experiment, not a memory setting


def launch_strategy(config_file: str | None) -> str:
    """The plan's strategy for launch.config_file: DDP without one, else the config's ZeRO stage (as
    accelerate reads the file)."""
    if not config_file or not uses_deepspeed(config_file):
        return "DDP"
    stage = int(deepspeed_settings(config_file).get("zero_stage", 0))
    return "ZeRO-3" if stage == 3 else "ZeRO-2"  # stages 1 and 2 hold the weights alike


def _usable(plan: Plan) -> str:
    return f"{HEADROOM * plan.gpu_gib:.1f} usable ({plan.gpus} x {plan.gpu_gib:.1f} GiB)"


def _train_fix(params: dict, plan: Plan, strategy: str, sm: int) -> str:
    ckpt = plan.configured_checkpointing
    options = [(strategy, True)] if not ckpt else []
    options += [(s, c) for c in dict.fromkeys((ckpt, True)) for s in STRATEGIES[STRATEGIES.index(strategy) + 1 :]]
    for s, c in options:
        if plan.fits(plan.row(s, c)):
            change = [] if s == strategy else [f"launch.config_file: {ACCELERATE_CONFIGS[s]}"]
            return " and ".join(change + ([] if c == ckpt else ["train.gradient_checkpointing: true"]))
    trial, length = copy.deepcopy(params), params["train"]["max_length"]
    for _ in range(MAX_HALVINGS):
        length //= 2
        if length <= plan.arch.full_vision_tokens:
            break
        trial["train"]["max_length"] = length
        smaller = make_plan(trial, plan.gpus, plan.gpu_gib, sm=sm)
        for s, c in dict.fromkeys([(strategy, ckpt), ("ZeRO-3", True)]):
            if smaller.fits(smaller.row(s, c)):
                change = [] if s == strategy else [f"launch.config_file: {ACCELERATE_CONFIGS[s]}"]
                change += [] if c == ckpt else ["train.gradient_checkpointing: true"]
                return " and ".join([*change, f"train.max_length: {length}"])
    return "none of checkpointing, ZeRO-3 or max_length down to an eighth fits: GPUs with more memory"


def _inference_fix(row: InferenceRow, plan: Plan, params: dict) -> str:
    ecfg = params["evaluation"]
    for key in ("batch_size", "max_length"):
        value = ecfg[key]
        for _ in range(MAX_HALVINGS if key == "max_length" else 8):
            value //= 2
            if value < 1:
                break
            trial = copy.deepcopy(params)
            trial["evaluation"][key] = value
            if plan.fits(inference_rows(trial, plan)[0]):
                return f"evaluation.{key}: {value}" + (" (predict: --batch-size)" if key == "batch_size" else "")
    return "none of a smaller batch or max_length fits: GPUs with more memory"


def _line(what: str, row: Row | InferenceRow, plan: Plan, fix: str) -> str:
    return (
        f"plan: {what} needs {row.total / GIB:.1f} GiB per GPU of {_usable(plan)}; largest term "
        f"{row.largest} ({row.terms[row.largest] / GIB:.1f} GiB); cheapest change that fits: {fix}"
    )


def plan_problems(params: dict, plan: Plan, train: bool = True, inference: bool = True) -> list[str]:
    """One line for each of the configured training launch and evaluate@/predict that does not fit."""
    out = []
    if train:
        strategy = launch_strategy(params["launch"]["config_file"])
        row = plan.row(strategy, plan.configured_checkpointing)
        if not plan.fits(row):
            ckpt = "with" if plan.configured_checkpointing else "without"
            what = f"train under {strategy} ({params['launch']['config_file'] or 'plain DDP'}, {ckpt} checkpointing)"
            out.append(_line(what, row, plan, _train_fix(params, plan, strategy, plan.sm)))
    if inference:
        for row in plan.inference:
            if not plan.fits(row):
                what = f"{row.name} at batch {row.batch} x {row.length} tokens"
                out.append(_line(what, row, plan, _inference_fix(row, plan, params)))
    return out
