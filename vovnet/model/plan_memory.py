"""Per-GPU memory of a training run under DDP, ZeRO-2 and ZeRO-3, with a verdict per configuration.

Weights, gradients and optimizer state follow from the parameter counts and how each strategy holds
them; activations are traced on the meta device (`plan.trace_activations`). A configuration fits when
its total stays within HEADROOM of the card: the rest is for the CUDA context, NCCL buffers and the
allocator's fragmentation, none of which the trace sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vovnet import VovnetError
from vovnet.launch import batch_plan
from vovnet.model.loading import attention_implementation, resolve_dtype, vision_dtype
from vovnet.model.plan import (
    KERNEL_NOTES,
    Architecture,
    build_meta_model,
    cast_trainable,
    describe,
    read_config,
    trace_activations,
)
from vovnet.model.plan_inference import InferenceRow, Terms, TextShape, inference_row
from vovnet.model.policy import PolicyHead

GIB = 1024**3
HEADROOM = 0.9
DEFAULT_GPUS, DEFAULT_GPU_GIB, DEFAULT_SM = 8, 32.0, 70  # the mission's 8 x V100 32 GB (sm_70)
STRATEGIES = ("DDP", "ZeRO-2", "ZeRO-3")
ACCELERATE_CONFIGS = {
    "DDP": "configs/accelerate/ddp_8gpu.yaml",
    "ZeRO-2": "configs/accelerate/zero2_v100.yaml",
    "ZeRO-3": "configs/accelerate/zero3_v100.yaml",
}


@dataclass
class Row(Terms):
    strategy: str
    checkpointing: bool
    terms: dict[str, float]  # bytes: weights, gradients, optimizer, activations


def planning_sm(sm: int | None) -> tuple[int, bool]:
    """The compute capability whose kernels the plan counts, and whether it is a GPU's: as given, else the
    smallest visible GPU's, else the V100 target's."""
    if sm:
        return sm, True
    if torch.cuda.is_available() and torch.cuda.device_count():
        caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
        return min(10 * a + b for a, b in caps), True
    return DEFAULT_SM, False


def planning_dtype(name: str, sm: int, seen: bool) -> tuple[torch.dtype, str]:
    """The compute dtype on the training GPUs; `auto` as the stage resolves it: bf16 from sm_80 up."""
    if name != "auto":
        return resolve_dtype(name), name
    if not seen:
        return torch.float16, "auto: no GPU visible, planned as V100 (sm_70) fp16 (--dtype bfloat16 for A100/H100)"
    return (torch.bfloat16, f"auto: bf16 on sm_{sm}") if sm >= 80 else (torch.float16, f"auto: fp16 on sm_{sm}")


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
    sm: int = DEFAULT_SM
    kernel: str = "efficient"  # the attention kernel the trace counted (plan.sdpa_kernel)
    attention: int = 0  # bytes that kernel keeps per layer (DDP trace)
    inference: list[InferenceRow] = field(default_factory=list)
    shapes: list[TextShape] = field(default_factory=list)  # the language model(s) that generate
    element: int = 2  # bytes per weight in the compute dtype
    vision_element: int = 4

    def fits(self, row: Row | InferenceRow, gpu_gib: float | None = None) -> bool:
        return row.total <= HEADROOM * (gpu_gib or self.gpu_gib) * GIB

    def row(self, strategy: str, checkpointing: bool) -> Row:
        return next(r for r in self.rows if r.strategy == strategy and r.checkpointing == checkpointing)


def per_process_batch(tcfg: dict, gpus: int, warnings: list[str]) -> int:
    """Activations are per process: the micro-batch on `gpus` processes (one per GPU). A global batch that
    does not divide is planned at its rounded-up share, with the launch's own error as a warning."""
    try:
        return batch_plan(tcfg["batch_size"], tcfg["micro_batch_size"], gpus).micro
    except VovnetError as exc:
        warnings.append(f"{exc} (planned at {-(-tcfg['batch_size'] // gpus)} per process)")
        return max(1, -(-tcfg["batch_size"] // gpus))


def make_plan(
    params: dict,
    gpus: int = DEFAULT_GPUS,
    gpu_gib: float = DEFAULT_GPU_GIB,
    dtype_name: str | None = None,
    sm: int | None = None,
) -> Plan:
    mcfg, tcfg = params["model"], params["train"]
    if gpus < 1 or gpu_gib <= 0:
        raise VovnetError(f"plan: --gpus must be >= 1 and --gpu-memory > 0 (got {gpus}, {gpu_gib})")
    sm, seen = planning_sm(sm)
    dtype, note = planning_dtype(dtype_name or mcfg["dtype"], sm, seen)
    config = read_config(mcfg["name"])
    # the attention the loader picks on this GPU (sm < 80: k/v expanded, see loading.sdpa_variant)
    attn = attention_implementation(mcfg["attn_implementation"], sm)
    mcfg = {**mcfg, "attn_implementation": attn}
    model = build_meta_model(config, mcfg, dtype)
    text = getattr(config, "text_config", config)
    with torch.device("meta"):
        head = PolicyHead(text.hidden_size, params["policy"]["hidden"])
    extra, shapes = None, [TextShape.of(config)]
    if mcfg["use_thinking_for_full"]:
        if not mcfg["full_model_name"]:
            raise VovnetError("params.yaml: model.use_thinking_for_full is true but model.full_model_name is empty")
        full_config = read_config(mcfg["full_model_name"])
        extra = build_meta_model(full_config, mcfg, dtype, trained=mcfg["train_full_model"])
        shapes.append(TextShape.of(full_config))
    arch = describe(model, head, config, mcfg, params["vision_budget"], extra)
    batch, seq = per_process_batch(tcfg, gpus, arch.warnings), tcfg["max_length"]
    if arch.full_vision_tokens >= seq:
        arch.warnings.append(
            f"FULL vision can produce {arch.full_vision_tokens} tokens, not below train.max_length "
            f"{seq}: records with an image will fail; raise max_length or lower the budget"
        )
    element = torch.finfo(dtype).bits // 8
    vision_element = torch.finfo(vision_dtype(dtype)).bits // 8
    acts = {"DDP": trace_activations(model, batch, seq, dtype, amp=element < 4, attn=attn, sm=sm)}
    cast_trainable(model, dtype)  # what the DeepSpeed engine does to the module
    acts["ZeRO"] = trace_activations(model, batch, seq, dtype, amp=False, attn=attn, sm=sm)
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
    plan = Plan(
        arch, rows, note, batch, seq, gpus, gpu_gib, tcfg["gradient_checkpointing"], factor, vision_element > element
    )
    plan.sm, plan.kernel, plan.attention = sm, acts["DDP"].kernel, acts["DDP"].attention
    plan.shapes, plan.element, plan.vision_element = shapes, element, vision_element
    plan.inference = inference_rows(params, plan)
    return plan


def inference_rows(params: dict, plan: Plan) -> list[InferenceRow]:
    """evaluate@ (each process a whole model, evaluation.batch_size per generate call) and predict (one
    process, --batch-size defaulting to the same): one row, since both hold the same per GPU."""
    mcfg, ecfg = params["model"], params["evaluation"]
    arch, element, sm = plan.arch, plan.element, plan.sm
    weights = (arch.frozen + arch.trainable) * element + arch.frozen_vision * (plan.vision_element - element)
    new = ecfg["max_new_tokens"]
    if mcfg["use_thinking_for_full"]:  # the Thinking model answers FULL with room to think
        new = max(new, ecfg["thinking_max_new_tokens"])
    name = "evaluate@ / predict" + (" + Thinking" if mcfg["use_thinking_for_full"] else "")
    return [inference_row(name, weights, plan.shapes, ecfg, new, element, mcfg["attn_implementation"], sm)]


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
    out.append(
        f"attention on sm_{plan.sm}: {KERNEL_NOTES[plan.kernel]}, {plan.attention / GIB:.3f} GiB per layer "
        "kept for backward"
    )
    out += _inference_lines(plan) + _v100_16gb_lines(plan)
    return "\n".join(out)


def _inference_lines(plan: Plan) -> list[str]:
    out = ["", f"| {'inference per GPU':<28} | batch | tokens | weights | kv cache | prefill | total GiB | verdict |"]
    out.append(f"|{'-' * 30}|{'-' * 7}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 9}|{'-' * 11}|{'-' * 9}|")
    for r in plan.inference:
        t = {k: v / GIB for k, v in r.terms.items()}
        out.append(
            f"| {r.name:<28} | {r.batch:5d} | {r.length:6d} | {t['weights']:7.2f} | {t['kv cache']:8.2f} | "
            f"{t['prefill']:7.2f} | {r.total / GIB:9.2f} | {'fits' if plan.fits(r) else 'OOM':<7} |"
        )
    kernels = {r.kernel for r in plan.inference}
    out.append(f"(prefill: one decoder layer at a time, attention {', '.join(KERNEL_NOTES[k] for k in kernels)})")
    return out


def _v100_16gb_lines(plan: Plan) -> list[str]:
    """The mission's servers may carry the 16 GB V100: each shipped launch config's verdict there."""
    out = [""]
    for strategy, path in ACCELERATE_CONFIGS.items():
        r = plan.row(strategy, plan.configured_checkpointing)
        verdict = "fits" if plan.fits(r, 16) else "does NOT fit"
        out.append(
            f"16 GB V100 ({plan.gpus} x 16 GiB): {path}: {verdict} ({r.total / GIB:.1f} of "
            f"{HEADROOM * 16:.1f} usable GiB; largest term {r.largest} {r.terms[r.largest] / GIB:.1f} GiB)"
        )
    inf = plan.inference[0]
    out.append(
        f"16 GB V100: {inf.name}: {'fits' if plan.fits(inf, 16) else 'does NOT fit'} ({inf.total / GIB:.1f} of "
        f"{HEADROOM * 16:.1f} usable GiB)"
    )
    return out
