"""Per-GPU memory of a training run under DDP, ZeRO-2 and ZeRO-3, with a verdict per configuration.

Weights, gradients and optimizer state follow from the parameter counts and how each strategy holds
them; activations are traced on the meta device (`plan.trace_activations`). A configuration fits when
its total stays within HEADROOM of the card: the rest is for the CUDA context, NCCL buffers and the
allocator's fragmentation, none of which the trace sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vovnet import VovnetError
from vovnet.launch import batch_plan
from vovnet.model.loading import resolve_dtype, vision_dtype
from vovnet.model.plan import Architecture, build_meta_model, cast_trainable, describe, read_config, trace_activations
from vovnet.model.policy import PolicyHead

GIB = 1024**3
HEADROOM = 0.9
DEFAULT_GPUS, DEFAULT_GPU_GIB = 8, 32.0  # the mission's 8 x V100 32 GB
STRATEGIES = ("DDP", "ZeRO-2", "ZeRO-3")
ACCELERATE_CONFIGS = {
    "DDP": "configs/accelerate/ddp_8gpu.yaml",
    "ZeRO-2": "configs/accelerate/zero2_v100.yaml",
    "ZeRO-3": "configs/accelerate/zero3_v100.yaml",
}


@dataclass
class Row:
    strategy: str
    checkpointing: bool
    terms: dict[str, float]  # bytes: weights, gradients, optimizer, activations

    @property
    def total(self) -> float:
        return sum(self.terms.values())

    @property
    def largest(self) -> str:
        return max(self.terms, key=self.terms.get)


def planning_dtype(name: str) -> tuple[torch.dtype, str]:
    """The compute dtype on the training GPUs; `auto` asks the visible GPU, else assumes the V100 target."""
    if name != "auto":
        return resolve_dtype(name), name
    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return (torch.bfloat16, "auto: bf16 on this GPU") if bf16 else (torch.float16, "auto: fp16 on this GPU")
    return torch.float16, "auto: no GPU visible, planned as V100 fp16 (--dtype bfloat16 for A100/H100)"


def strategy_terms(
    strategy: str, arch: Architecture, act: int, element: int, gpus: int, vision_element: int | None = None
) -> dict[str, float]:
    """Bytes per GPU. DDP: accelerate's mixed precision (fp32 trainable weights, autocast); DeepSpeed: the
    module cast to the compute dtype with fp32 master weights kept by the optimizer (none in fp32). The
    frozen vision tower takes `vision_element` bytes a weight (4 under fp16: it runs in fp32)."""
    trainable = arch.trainable
    # the fp32 vision tower counted as this many compute-dtype weights
    frozen = arch.frozen + arch.frozen_vision * ((vision_element or element) - element) / element
    master = 0 if element == 4 else 4
    bucket = min(trainable, arch.hidden**2) * element  # DeepSpeed's reduce bucket (accelerate: hidden^2)
    if strategy == "DDP":
        return {
            "weights": frozen * element + trainable * 4,
            "gradients": 2 * trainable * 4,  # .grad plus DDP's flat all-reduce buckets
            "optimizer": 8 * trainable,  # AdamW exp_avg + exp_avg_sq (fp32)
            "activations": act,
        }
    optimizer = (master + 8) * trainable / gpus  # fp32 master + AdamW moments, 1/N each
    gradients = trainable * (element + master) / gpus + bucket  # half-precision and fp32 partitions
    if strategy == "ZeRO-2":
        weights = (frozen + trainable) * element
    else:  # ZeRO-3: a 1/N shard plus the gathered module and the one prefetched after it
        weights = (frozen + trainable) * element / gpus + 2 * arch.largest_module * element
    return {"weights": weights, "gradients": gradients, "optimizer": optimizer, "activations": act}


@dataclass
class Plan:
    arch: Architecture
    rows: list[Row]
    dtype_note: str
    batch: int
    seq: int
    gpus: int
    gpu_gib: float
    configured_checkpointing: bool
    stage2_factor: int
    vision_fp32: bool = False  # the vision tower runs in fp32 (under fp16)

    def fits(self, row: Row) -> bool:
        return row.total <= HEADROOM * self.gpu_gib * GIB


def per_process_batch(tcfg: dict, gpus: int, warnings: list[str]) -> int:
    """Activations are per process: the micro-batch on `gpus` processes (one per GPU). A global batch that
    does not divide is planned at its rounded-up share, with the launch's own error as a warning."""
    try:
        return batch_plan(tcfg["batch_size"], tcfg["micro_batch_size"], gpus).micro
    except VovnetError as exc:
        warnings.append(f"{exc} (planned at {-(-tcfg['batch_size'] // gpus)} per process)")
        return max(1, -(-tcfg["batch_size"] // gpus))


def make_plan(
    params: dict, gpus: int = DEFAULT_GPUS, gpu_gib: float = DEFAULT_GPU_GIB, dtype_name: str | None = None
) -> Plan:
    mcfg, tcfg = params["model"], params["train"]
    if gpus < 1 or gpu_gib <= 0:
        raise VovnetError(f"plan: --gpus must be >= 1 and --gpu-memory > 0 (got {gpus}, {gpu_gib})")
    dtype, note = planning_dtype(dtype_name or mcfg["dtype"])
    config = read_config(mcfg["name"])
    model = build_meta_model(config, mcfg, dtype)
    text = getattr(config, "text_config", config)
    with torch.device("meta"):
        head = PolicyHead(text.hidden_size, params["policy"]["hidden"])
    extra = None
    if mcfg["use_thinking_for_full"]:
        if not mcfg["full_model_name"]:
            raise VovnetError("params.yaml: model.use_thinking_for_full is true but model.full_model_name is empty")
        extra = build_meta_model(read_config(mcfg["full_model_name"]), mcfg, dtype, trained=mcfg["train_full_model"])
    arch = describe(model, head, config, mcfg, params["vision_budget"], extra)
    batch, seq = per_process_batch(tcfg, gpus, arch.warnings), tcfg["max_length"]
    if arch.full_vision_tokens >= seq:
        arch.warnings.append(
            f"FULL vision can produce {arch.full_vision_tokens} tokens, not below train.max_length "
            f"{seq}: records with an image will fail; raise max_length or lower the budget"
        )
    element = torch.finfo(dtype).bits // 8
    vision_element = torch.finfo(vision_dtype(dtype)).bits // 8
    attn = mcfg["attn_implementation"]
    acts = {"DDP": trace_activations(model, batch, seq, dtype, amp=element < 4, attn=attn)}
    cast_trainable(model, dtype)  # what the DeepSpeed engine does to the module
    acts["ZeRO"] = trace_activations(model, batch, seq, dtype, amp=False, attn=attn)
    # Stage 2 with train_lora keeps the graphs of all three branches (NO, COARSE, FULL) until backward.
    factor = 3 if tcfg["stage2"]["train_lora"] else 1
    rows = []
    for strategy in STRATEGIES:
        trace = acts["DDP" if strategy == "DDP" else "ZeRO"]
        for ckpt in (False, True):
            rows.append(
                Row(
                    strategy,
                    ckpt,
                    strategy_terms(strategy, arch, factor * trace.total(ckpt), element, gpus, vision_element),
                )
            )
    return Plan(
        arch, rows, note, batch, seq, gpus, gpu_gib, tcfg["gradient_checkpointing"], factor, vision_element > element
    )


def _n(x: int) -> str:
    return f"{x / 1e9:.3f}B" if x >= 1e8 else f"{x / 1e6:.2f}M" if x >= 1e5 else f"{x:,}"


def format_plan(plan: Plan, model_name: str) -> str:
    a = plan.arch
    out = [f"warning: {w}" for w in a.warnings]
    out.append(
        f"plan for {model_name} ({a.model_type}), {plan.dtype_note}; batch {plan.batch} x max_length {plan.seq} "
        f"tokens (FULL vision worst case {a.full_vision_tokens} tokens per image), {plan.gpus} x "
        f"{plan.gpu_gib:g} GiB"
    )
    out.append("")
    out.append(f"| {'module group':<24} | {'params':>9} | {'trainable':>9} |")
    out.append(f"|{'-' * 26}|{'-' * 11}|{'-' * 11}|")
    for group, (total, trainable) in a.groups.items():
        out.append(f"| {group:<24} | {_n(total):>9} | {_n(trainable):>9} |")
    out.append(f"| {'total':<24} | {_n(a.frozen + a.trainable):>9} | {_n(a.trainable):>9} |")
    if plan.vision_fp32 and a.frozen_vision:
        out.append(
            f"vision tower + mergers in fp32 under fp16: {_n(a.frozen_vision)} frozen params, "
            f"+{a.frozen_vision * 2 / GIB:.2f} GiB per GPU over fp16 (counted in weights below)"
        )
    targets = ", ".join(f"{t} x{k}" for t, k in a.per_target.items())
    out.append("")
    out.append(
        f"LoRA modules matched: {len(a.lora_modules)} ({targets}), none in the vision tower"
        if a.lora_modules
        else "LoRA: none (model.finetune: full, every language-model parameter trains)"
    )
    out.append("")
    out.append(f"| {'config':<28} | {'ckpt':<4} | weights | grads | optim | activ | total GiB | verdict |")
    out.append(f"|{'-' * 30}|{'-' * 6}|{'-' * 9}|{'-' * 7}|{'-' * 7}|{'-' * 7}|{'-' * 11}|{'-' * 9}|")
    for r in plan.rows:
        t = {k: v / GIB for k, v in r.terms.items()}
        mark = "*" if r.checkpointing == plan.configured_checkpointing else " "
        verdict = "fits" if plan.fits(r) else "OOM"
        name = f"{r.strategy} {ACCELERATE_CONFIGS[r.strategy].rsplit('/', 1)[-1]}"
        out.append(
            f"| {name:<28} | {'on' if r.checkpointing else 'off':<3}{mark} | {t['weights']:7.2f} | "
            f"{t['gradients']:5.2f} | {t['optimizer']:5.2f} | {t['activations']:5.2f} | {r.total / GIB:9.2f} | "
            f"{verdict:<7} |"
        )
    out.append("")
    for r in plan.rows:
        if r.checkpointing == plan.configured_checkpointing:
            verdict = "fits in" if plan.fits(r) else "does NOT fit in"
            out.append(
                f"verdict {r.strategy}: {verdict} {plan.gpus} x {plan.gpu_gib:g} GiB "
                f"({r.total / GIB:.1f} GiB per GPU of {HEADROOM * plan.gpu_gib:.1f} usable); "
                f"largest term: {r.largest} ({r.terms[r.largest] / GIB:.1f} GiB)"
            )
    out.append(
        f"(* = train.gradient_checkpointing as configured; activations per GPU at batch {plan.batch}, "
        f"traced on meta{', x3 for stage 2 with train_lora' if plan.stage2_factor > 1 else ''}; "
        f"{int(HEADROOM * 100)}% of each card is usable, the rest is CUDA context, NCCL, fragmentation)"
    )
    return "\n".join(out)
