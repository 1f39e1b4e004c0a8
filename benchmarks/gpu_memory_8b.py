"""The memory plan against measured peaks on the real 8B shapes (random weights), on one H100 or H200.

Qwen3-VL-8B is built from tests/fixtures/qwen3-vl-8b-instruct/config.json with random weights, in fp16
with its vision tower in fp32 and the project's LoRA (`add_lora`), as one DDP process trains it. Each row is
a stage-1 language-model step (autocast fp16, AdamW on the LoRA, gradient checkpointing on) at batch 1 x
`--length` tokens, measured after one warm-up step, for:
  - attention as on a V100 (sm_70): the model loaded with `attention_implementation("sdpa", 70)`, the
    loader's choice there (k/v expanded to every query head, SDPA without enable_gqa), and only the SDPA
    kernels a V100 has allowed (memory-efficient and MATH; flash and cuDNN need sm_80), against the plan
    for sm_70;
  - attention as on this GPU (sm_80 and up: transformers' own SDPA call, every kernel allowed), against
    the plan for sm_80;
each uncapped, then with the process capped to 32 and to 16 GiB (`torch.cuda.set_per_process_memory_fraction`):
the peak `max_memory_allocated`, the plan's total for the same row, and whether both verdicts agree.

    python benchmarks/gpu_check.py --part memory8b                       # one H100/H200, ~3 minutes
    python benchmarks/gpu_check.py --part memory8b --device cpu --lm-layers 1 --length 32 --caps ''  # smoke
"""

from __future__ import annotations

import gc
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from vovnet.config import defaults
from vovnet.model.loading import add_lora, attention_implementation, keep_vision_fp32
from vovnet.model.plan_memory import GIB, HEADROOM, make_plan

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_8B = ROOT / "tests" / "fixtures" / "qwen3-vl-8b-instruct"
# label: (sm the loader and the plan take, the SDPA kernels allowed; None: all of this GPU's)
ATTENTION = {
    "sm_70 (k/v expanded; efficient + MATH)": (70, [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]),
    "this GPU (sm_80+ kernels)": (80, None),
}
HEAD = ("attention", "cap GiB", "peak GiB", "plan GiB", "peak/plan", "plan verdict", "measured")


def params_for(model_dir: Path, length: int) -> dict:
    p = defaults()
    p["model"].update(name=str(model_dir), dtype="float16", attn_implementation="sdpa")
    p["train"].update(batch_size=1, micro_batch_size=1, max_length=length, gradient_checkpointing=True)
    p["train"]["stage2"]["train_lora"] = False  # one branch's graph, as the step below keeps
    return p


def random_8b(config, params: dict, device, sm: int):
    """The fixture's architecture with random weights: fp16, the vision tower in fp32, LoRA as training; its
    attention the one the loader picks on a GPU of capability `sm` (sm_70: k/v expanded, no enable_gqa)."""
    from transformers import AutoModelForImageTextToText

    attn = attention_implementation(params["model"]["attn_implementation"], sm)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float16, attn_implementation=attn)
    keep_vision_fp32(model)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = add_lora(model, params["model"])
    for p in model.parameters():  # accelerate's mixed precision keeps what trains in fp32
        if p.requires_grad:
            p.data = p.data.float()
    return model


def step(model, opt, ids, device) -> None:
    with torch.autocast(device.type, dtype=torch.float16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()  # no loss scaling: random weights may overflow, and only memory is measured here
    opt.step()
    opt.zero_grad(set_to_none=True)


def measure(model, opt, ids, device, backends) -> float | None:
    """Peak GiB of one step after a warm-up step (optimizer state allocated), or None on CPU."""
    with sdpa_kernel(backends) if backends else nullcontext():
        step(model, opt, ids, device)
        if device.type != "cuda":
            return None
        torch.cuda.synchronize(device)
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        step(model, opt, ids, device)
        torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / GIB


def cap_to(gib: float | None, device) -> None:
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, gib * GIB / total) if gib else 1.0, device)


def rows(device, length: int, caps: list[float], lm_layers: int | None, tmp: Path) -> list[tuple]:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(FIXTURE_8B)
    if lm_layers:  # a smoke run: fewer decoder layers, a vision tower of one block, a small vocabulary
        config.text_config.num_hidden_layers = lm_layers
        config.text_config.vocab_size = 4096  # fp16 logits of 151,936 tokens crawl on a CPU
        config.vision_config.depth, config.vision_config.deepstack_visual_indexes = 1, [0]
    config.save_pretrained(tmp)  # what `plan` reads: the architecture that runs
    params = params_for(tmp, length)
    out = []
    torch.manual_seed(0)
    ids = torch.randint(10, config.text_config.vocab_size, (1, length), device=device)
    for label, (sm, backends) in ATTENTION.items():
        # one model per attention, built as the loader would on that GPU; the previous one freed first
        model = opt = None
        gc.collect()
        cap_to(None, device)  # the last row's cap (16 GiB) would not hold the weights
        if device.type == "cuda":
            torch.cuda.empty_cache()
        model = random_8b(config, params, device, sm)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        for cap in [None, *caps]:
            cap_to(cap, device)
            gpu_gib = cap or (
                torch.cuda.get_device_properties(device).total_memory / GIB if device.type == "cuda" else 32
            )
            planned = (
                make_plan(params, gpus=1, gpu_gib=gpu_gib, dtype_name="float16", sm=sm).row("DDP", True).total / GIB
            )
            try:
                peak, measured = measure(model, opt, ids, device, backends), "ran"
            except torch.OutOfMemoryError:
                peak, measured = None, "OOM"
                opt.zero_grad(set_to_none=True)
                gc.collect()
                torch.cuda.empty_cache()
            verdict = "fits" if planned <= HEADROOM * gpu_gib else "OOM"
            out.append(
                (
                    label,
                    f"{cap:g}" if cap else f"{gpu_gib:.0f} (all)",
                    f"{peak:.2f}" if peak is not None else "-",
                    f"{planned:.2f}",
                    f"{peak / planned:.2f}" if peak is not None else "",
                    verdict,
                    measured,
                )
            )
    cap_to(None, device)
    return out


def run(device_name: str, length: int, caps: list[float], lm_layers: int | None) -> None:
    device = torch.device(device_name)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        table = rows(device, length, caps, lm_layers, Path(tmp))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"\ngpu_check memory8b on {name}: random-weight Qwen3-VL-8B (fixture config"
        f"{f', {lm_layers} LM layer(s), vocabulary 4,096' if lm_layers else ''}), fp16 + fp32 vision tower, LoRA, checkpointing, "
        f"batch 1 x {length} tokens; plan = `plan` DDP row on 1 GPU ({HEADROOM:.0%} of a cap usable); "
        f"{time.time() - t0:.0f} s\n"
    )
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "|".join("---" for _ in HEAD) + "|")
    for row in table:
        print("| " + " | ".join(row) + " |")
