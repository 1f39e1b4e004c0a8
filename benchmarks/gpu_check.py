"""Device check for the GPU path, on a random-weight Qwen3-VL scaled down from the 8B (one GPU, < 8 min).

Measures, on the project's own model factory, encoder and VoVNet forward:
  - fp16 and bf16 stage-1 (LoRA, gradient checkpointing off/on) and stage-2 steps: step time, tokens/s,
    peak memory, and the memory `python -m vovnet plan` predicts for the same model, dtype, batch and length;
  - SDPA vs eager attention (stage 1);
  - fp16 with the vision tower in fp32 (the default under fp16) against plain fp16: step time and peak;
  - a one-process DeepSpeed ZeRO-2 run (accelerate's DeepSpeed plugin, as configs/accelerate/zero2_v100.yaml);
  - learned vs always-full wall time per question through predict's `Predictor` (text pass, head, only the
    chosen branch, image decode and preprocessing included, after a warm-up).
Prints one table.

    python benchmarks/gpu_check.py                      # on a CUDA GPU
    python benchmarks/gpu_check.py --device cpu --dtypes bfloat16 --hidden 128 --layers 2 --vision-depth 2 \
        --steps 1 --batch 2 --questions 2                # a CPU smoke run of every code path (no peaks)
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vovnet.config import defaults  # noqa: E402

PAPER_BUDGET = {"coarse": {"min_pixels": 3136, "max_pixels": 65536},
                "full": {"min_pixels": 65536, "max_pixels": 1003520}}
GIB = 1024**3


def build_scaled_model(out_dir: Path, hidden: int, layers: int, vision_depth: int) -> None:
    """Qwen3-VL-8B's shapes scaled down: head_dim 128, 4 query heads per KV head, intermediate 3x hidden,
    the real 151,936-token vocabulary (the logits dominate activations) and the real vision width."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    from vovnet.model.tiny import SPECIALS, build_tokenizer

    tokenizer = build_tokenizer(1024)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    heads = max(1, hidden // 128)
    deepstack = sorted({max(0, vision_depth * k // 4 - 1) for k in (1, 2, 3)})
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=151936, hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=max(1, heads // 4), head_dim=128,
                         max_position_embeddings=8192, pad_token_id=ids["<|endoftext|>"],
                         rope_parameters={"rope_type": "default", "rope_theta": 5000000.0,
                                          "mrope_section": [24, 20, 20], "mrope_interleaved": True}),
        vision_config=dict(depth=vision_depth, hidden_size=1152, intermediate_size=4304, num_heads=16, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden,
                           num_position_embeddings=2304, deepstack_visual_indexes=deepstack),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out_dir, safe_serialization=True)
    image_processor = Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2,
                                            image_mean=[0.5] * 3, image_std=[0.5] * 3)
    Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                     video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2)
                     ).save_pretrained(out_dir)


def params_for(model_dir: Path, dtype: str, attn: str, ckpt: bool, batch: int, length: int) -> dict:
    import copy

    p = defaults()
    p["model"].update(name=str(model_dir), dtype=dtype, attn_implementation=attn)
    p["vision_budget"] = copy.deepcopy(PAPER_BUDGET)
    p["train"].update(batch_size=batch, max_length=length, gradient_checkpointing=ckpt)
    return p


def records(n: int) -> list[tuple[dict, list]]:
    """Multiple-choice questions, each with one photo-sized image (FULL hits the paper's 980-token cap)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = Image.fromarray(rng.integers(0, 255, (1080, 1440, 3), dtype=np.uint8))
        rec = {"id": f"g{i}", "question": f"What colour is object {i} in the image?", "hint": None,
               "choices": ["red", "green", "blue", "yellow"], "answer": {"label": i % 4, "text": None, "all": []}}
        out.append((rec, [img]))
    return out


class Encoded:
    """The encodings the trainer's dataset yields, from in-memory records (no image store)."""

    def __init__(self, recs, encoder, with_target=True):
        self.items = [encoder.encode_all(r, imgs, with_target) for r, imgs in recs]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None


def fresh(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def predicted_gib(params: dict, strategy: str, device) -> float:
    from vovnet.model.plan_memory import make_plan

    gpu_gib = torch.cuda.get_device_properties(device).total_memory / GIB if device.type == "cuda" else 32.0
    plan = make_plan(params, gpus=1, gpu_gib=gpu_gib)
    ckpt = params["train"]["gradient_checkpointing"]
    return next(r.total for r in plan.rows if r.strategy == strategy and r.checkpointing == ckpt) / GIB


def train_steps(params: dict, stage: int, steps: int, device, model_recs, engine=None,
                half_vision: bool = False) -> dict:
    """`steps` timed optimizer steps (after one warm-up) of the trainer's forward/backward. `half_vision`:
    the vision tower in fp16 too (plain fp16), instead of the project's fp32 tower under fp16."""
    from vovnet.model.encoding import ActionCollator, Encoder
    from vovnet.model.factory import build_vovnet
    from vovnet.model.loading import vision_towers

    fresh(device)
    dt = {"float16": torch.float16, "bfloat16": torch.bfloat16}[params["model"]["dtype"]]
    model, processor = build_vovnet(params, device=device)
    if half_vision:
        for tower in vision_towers(model):
            tower.half()
    if params["train"]["gradient_checkpointing"]:
        model.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.lm.enable_input_require_grads()
    enc = Encoder(processor, params["vision_budget"], params["train"]["max_length"])
    data = Encoded(model_recs, enc)
    batch = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)(
        [data[i] for i in range(params["train"]["batch_size"])])
    batch = {a: ({k: v.to(device) for k, v in b.items()} if isinstance(b, dict) else b) for a, b in batch.items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-5)
    if engine is not None:  # DeepSpeed: accelerate prepares model and optimizer, the engine does the casting
        model, opt = engine(model, opt)
    scaler = torch.amp.GradScaler(device.type, enabled=engine is None and dt == torch.float16)
    tokens = int(batch["full" if stage == 1 else "no"]["attention_mask"].sum())
    if stage == 2:
        tokens += int(batch["coarse"]["attention_mask"].sum() + batch["full"]["attention_mask"].sum())

    def step():
        with torch.autocast(device.type, dtype=dt, enabled=engine is None):
            out = model(batch, stage=stage, action="full", policy_cfg=params["policy"], prefix_reuse=True)
        if engine is None:
            scaler.scale(out["loss"]).backward()
            scaler.step(opt)
            scaler.update()
        else:
            model.backward(out["loss"])
            model.step()
        opt.zero_grad(set_to_none=True)

    step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    sec = (time.perf_counter() - t0) / steps
    width = int(batch["full"]["input_ids"].shape[1])
    model = opt = batch = None  # free the GPU memory before the next measurement
    return {"step_s": sec, "tokens_s": tokens / sec, "peak_gib": peak_gib(device), "width": width}


def zero2_child(args) -> None:
    """One process, world size 1, DeepSpeed ZeRO-2 through accelerate; prints one JSON line."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(args.port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin

    dtype = args.dtype
    plugin = DeepSpeedPlugin(zero_stage=2, gradient_clipping=1.0, offload_optimizer_device="none",
                             offload_param_device="none", zero3_init_flag=False)
    plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = args.batch  # as the trainer does
    acc = Accelerator(mixed_precision="fp16" if dtype == "float16" else "bf16", deepspeed_plugin=plugin)
    params = params_for(Path(args.model_dir), dtype, "sdpa", True, args.batch, args.length)
    res = train_steps(params, 1, args.steps, acc.device, records(args.batch), engine=lambda m, o: acc.prepare(m, o))
    print(json.dumps(res))


def zero2_row(args, model_dir: Path, dtype: str, length: int, device) -> tuple:
    if device.type != "cuda":
        return ("ZeRO-2 1 proc", dtype, "1", "skipped: needs CUDA", "", "", "", "")
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        return ("ZeRO-2 1 proc", dtype, "1", "skipped: deepspeed not installed (pip install -r requirements-gpu.txt)",
                "", "", "", "")
    cmd = [sys.executable, __file__, "--part", "zero2", "--model-dir", str(model_dir), "--dtype", dtype,
           "--batch", str(args.batch), "--length", str(length), "--steps", str(args.steps), "--port", str(args.port)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1][:120]
        return ("ZeRO-2 1 proc", dtype, "1", f"FAILED: {last}", "", "", "", "")
    r = json.loads(lines[-1])
    pred = predicted_gib(params_for(model_dir, dtype, "sdpa", True, args.batch, length), "ZeRO-2", device)
    return ("ZeRO-2 1 proc", dtype, "1 ckpt", f"{r['step_s'] * 1000:.0f}", f"{r['tokens_s']:.0f}",
            f"{r['peak_gib']:.2f}", f"{pred:.2f}", f"{r['peak_gib'] / pred:.2f}")


def predict_rows(model_dir: Path, dtype: str, n: int, device) -> list[tuple]:
    """Learned policy vs always-full through predict's path (only the chosen branch runs; per-request
    latency from the batch's start, image decode and preprocessing included, after a warm-up)."""
    import tempfile

    from vovnet.inference.predict import PredictOptions, Predictor, percentile
    from vovnet.inference.requests import Request
    from vovnet.model.factory import build_vovnet

    fresh(device)
    params = params_for(model_dir, dtype, "sdpa", False, 1, 4096)
    model, processor = build_vovnet(params, device=device)
    model.eval()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        reqs = []
        for i, (rec, imgs) in enumerate(records(n)):
            path = Path(tmp) / f"{i}.png"
            imgs[0].save(path)
            reqs.append(Request(i + 1, rec, paths=[path], sizes=[imgs[0].size]))
        with torch.autocast(device.type, dtype={"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]):
            for policy in ("learned", "full"):
                predictor = Predictor(model, processor, params["vision_budget"], 4096, device,
                                      PredictOptions(policy=policy, batch_size=1, max_new_tokens=8))
                predictor.warm_up(reqs)
                sync(device)
                t0 = time.perf_counter()
                rows, _ = predictor.answer_all(reqs, show_progress=False)
                sync(device)
                out.append((policy, (time.perf_counter() - t0) / n, rows))
    del model
    (_, learned, lrows), (_, full, _) = out
    mix = "/".join(f"{a}={sum(r['action'] == a for r in lrows)}" for a in ("no", "coarse", "full"))
    p50 = percentile([r["latency_ms"] for r in lrows], 0.5)
    return [("learned policy (predict)", dtype, f"{n} q", f"{learned * 1000:.0f} ms/q", mix, f"p50 {p50:.0f} ms", "", ""),
            ("always-full (predict)", dtype, f"{n} q", f"{full * 1000:.0f} ms/q", f"learned/full {learned / full:.2f}",
             "", "", "")]


def fp16_vision_rows(model_dir: Path, args, device, recs) -> list[tuple]:
    """Stage 1 under fp16 with the vision tower in fp32 (the project's default) against plain fp16."""
    out, times = [], {}
    for label, half in (("fp32 vision tower", False), ("plain fp16 (vision fp16)", True)):
        p = params_for(model_dir, "float16", "sdpa", True, args.batch, 4096)
        r = train_steps(p, 1, args.steps, device, recs, half_vision=half)
        times[half] = r["step_s"]
        peak = "n/a (CPU)" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        out.append((f"stage 1, fp16, {label}", "float16", "1 ckpt", f"{r['step_s'] * 1000:.0f}",
                    f"{r['tokens_s']:.0f}", peak, "", ""))
    out[0] = out[0][:6] + (f"step x{times[False] / times[True]:.2f} of plain", "")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Compares peaks with `python -m vovnet plan`.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--hidden", type=int, default=1024, help="LM width (8B: 4096)")
    ap.add_argument("--layers", type=int, default=8, help="LM layers (8B: 36)")
    ap.add_argument("--vision-depth", type=int, default=8, help="vision blocks (8B: 27)")
    ap.add_argument("--dtypes", default="float16,bfloat16", help="comma-separated; bf16 is skipped on GPUs without it")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per row after one warm-up")
    ap.add_argument("--questions", type=int, default=16, help="questions for learned vs always-full")
    ap.add_argument("--minutes", type=float, default=8.0, help="stop adding rows after this budget")
    ap.add_argument("--port", type=int, default=29517, help="rendezvous port of the ZeRO-2 process")
    ap.add_argument("--part", choices=["all", "zero2"], default="all", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part == "zero2":
        return zero2_child(args)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible (use --device cpu for a smoke run)")
    t_start = time.time()
    rows: list[tuple] = []
    dtypes = [d for d in args.dtypes.split(",") if d]
    if "bfloat16" in dtypes and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        dtypes.remove("bfloat16")
        rows.append(("bf16", "bfloat16", "", "skipped: this GPU has no bf16", "", "", "", ""))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "scaled-qwen3-vl"
        build_scaled_model(model_dir, args.hidden, args.layers, args.vision_depth)
        recs = records(args.batch)
        length = 4096  # the encoder's cap; the plan is then given the batch's real width
        for dtype in dtypes:
            for stage, ckpt in ((1, False), (1, True), (2, False)):
                if time.time() - t_start > args.minutes * 60:
                    rows.append(("(budget spent)", dtype, "", "", "", "", "", ""))
                    break
                p = params_for(model_dir, dtype, "sdpa", ckpt, args.batch, length)
                r = train_steps(p, stage, args.steps, device, recs)
                p["train"]["max_length"] = r["width"]
                pred = predicted_gib(p, "DDP", device)
                peak = "n/a (CPU)" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
                ratio = "" if r["peak_gib"] is None else f"{r['peak_gib'] / pred:.2f}"
                rows.append((f"stage {stage}, sdpa", dtype, f"{stage}{' ckpt' if ckpt else ''}",
                             f"{r['step_s'] * 1000:.0f}", f"{r['tokens_s']:.0f}", peak, f"{pred:.2f}", ratio))
        dtype = dtypes[-1]
        r = train_steps(params_for(model_dir, dtype, "eager", False, args.batch, length), 1, args.steps, device, recs)
        p = params_for(model_dir, dtype, "eager", False, args.batch, r["width"])
        pred = predicted_gib(p, "DDP", device)
        rows.append(("stage 1, eager (vs sdpa)", dtype, "1", f"{r['step_s'] * 1000:.0f}", f"{r['tokens_s']:.0f}",
                     "n/a (CPU)" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}", f"{pred:.2f}",
                     "" if r["peak_gib"] is None else f"{r['peak_gib'] / pred:.2f}"))
        if "float16" in dtypes:
            rows += fp16_vision_rows(model_dir, args, device, recs)
        rows.append(zero2_row(args, model_dir, dtypes[0], r["width"], device))
        rows += predict_rows(model_dir, dtype, args.questions, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\ngpu_check on {name}; scaled Qwen3-VL: hidden {args.hidden}, {args.layers} layers, vision depth "
          f"{args.vision_depth}, vocab 151,936; batch {args.batch}, FULL image 980 tokens, sequence {r['width']} "
          f"tokens; {time.time() - t_start:.0f} s\n")
    head = ("run", "dtype", "stage", "step ms", "tokens/s", "peak GiB", "plan GiB", "peak/plan")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main()
