"""Device check for the GPU path, on a random-weight Qwen3-VL scaled down from the 8B (one GPU, < 8 min).

Measures, on the project's own model factory, encoder and VoVNet forward:
  - fp16 and bf16 stage-1 (LoRA, gradient checkpointing off/on) and stage-2 steps: step time, tokens/s,
    peak memory, and the memory `python -m vovnet plan` predicts for the same model, dtype, batch and length;
  - SDPA vs eager attention (stage 1);
  - fp16 with the vision tower in fp32 (the default under fp16) against plain fp16: step time and peak;
  - a one-process DeepSpeed ZeRO-2 run (accelerate's DeepSpeed plugin, as configs/accelerate/zero2_v100.yaml);
  - every predict policy's wall time per question through predict's `Predictor` and its per-action queues
    (text pass, head, only the chosen branch, image decode and preprocessing included, after a warm-up),
    the head set to send a third of the questions to each action, and the learned policy's wall time
    over its mix bound (the sum of share x always-action wall time).
Prints one table.

    python benchmarks/gpu_check.py                      # on a CUDA GPU
    python benchmarks/gpu_check.py --device cpu --dtypes bfloat16 --hidden 128 --layers 2 --vision-depth 2 \
        --steps 1 --batch 2 --questions 6                # a CPU smoke run of every code path (no peaks)
    python benchmarks/gpu_check.py --device cpu --dtypes bfloat16 --hidden 128 --layers 2 --vision-depth 2 \
        --predict-only --questions 12 --predict-batch 4  # the predict rows alone, more questions
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vovnet.config import defaults  # noqa: E402

PAPER_BUDGET = {
    "coarse": {"min_pixels": 3136, "max_pixels": 65536},
    "full": {"min_pixels": 65536, "max_pixels": 1003520},
}
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
        text_config=dict(
            vocab_size=151936,
            hidden_size=hidden,
            intermediate_size=3 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 4),
            head_dim=128,
            max_position_embeddings=8192,
            pad_token_id=ids["<|endoftext|>"],
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 5000000.0,
                "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
            },
        ),
        vision_config=dict(
            depth=vision_depth,
            hidden_size=1152,
            intermediate_size=4304,
            num_heads=16,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=hidden,
            num_position_embeddings=2304,
            deepstack_visual_indexes=deepstack,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out_dir, safe_serialization=True)
    image_processor = Qwen2VLImageProcessor(
        patch_size=16, merge_size=2, temporal_patch_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2),
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
        rec = {
            "id": f"g{i}",
            "question": f"What colour is object {i} in the image?",
            "hint": None,
            "choices": ["red", "green", "blue", "yellow"],
            "answer": {"label": i % 4, "text": None, "all": []},
        }
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


def train_steps(
    params: dict, stage: int, steps: int, device, model_recs, engine=None, half_vision: bool = False
) -> dict:
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
        [data[i] for i in range(params["train"]["batch_size"])]
    )
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
    plugin = DeepSpeedPlugin(
        zero_stage=2,
        gradient_clipping=1.0,
        offload_optimizer_device="none",
        offload_param_device="none",
        zero3_init_flag=False,
    )
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
        return (
            "ZeRO-2 1 proc",
            dtype,
            "1",
            "skipped: deepspeed not installed (pip install -r requirements.txt)",
            "",
            "",
            "",
            "",
        )
    cmd = [
        sys.executable,
        __file__,
        "--part",
        "zero2",
        "--model-dir",
        str(model_dir),
        "--dtype",
        dtype,
        "--batch",
        str(args.batch),
        "--length",
        str(length),
        "--steps",
        str(args.steps),
        "--port",
        str(args.port),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1][:120]
        return ("ZeRO-2 1 proc", dtype, "1", f"FAILED: {last}", "", "", "", "")
    r = json.loads(lines[-1])
    pred = predicted_gib(params_for(model_dir, dtype, "sdpa", True, args.batch, length), "ZeRO-2", device)
    return (
        "ZeRO-2 1 proc",
        dtype,
        "1 ckpt",
        f"{r['step_s'] * 1000:.0f}",
        f"{r['tokens_s']:.0f}",
        f"{r['peak_gib']:.2f}",
        f"{pred:.2f}",
        f"{r['peak_gib'] / pred:.2f}",
    )


QUESTION_KINDS = (
    "What colour is object {i} in the image?",
    "Question {i}: how many people stand on the left of the red car near the tree?",
    "Read the word on sign {i}.",
)


def split_head(model, processor, params: dict, recs: list[tuple[dict, list]], device) -> None:
    """Rebuilds the random head's last layer so that the learned policy sends a third of the questions each
    to NO, COARSE and FULL (ranked by the FULL - COARSE score gap u: score k becomes k*u - c_k, NO below the
    first threshold, FULL above the second); a random head scores these near-identical questions alike."""
    from vovnet.model.encoding import Encoder
    from vovnet.model.generation import TokenIds, text_prefill

    enc, ids = Encoder(processor, params["vision_budget"], None), TokenIds.of(processor)
    with torch.no_grad():
        prefill = text_prefill(
            model.lm, [enc.encode(r, [], "no", with_target=False) for r, _ in recs], ids.pad, ids.image, device
        )
        scores = model.policy_scores(prefill.features).float()
        last = model.head.mlp[-1]
        dw, db = last.weight[2] - last.weight[1], last.bias[2] - last.bias[1]
        u = sorted((scores[:, 2] - scores[:, 1]).tolist())
        n = len(u)
        t1, t2 = (u[n // 3 - 1] + u[n // 3]) / 2, (u[2 * n // 3 - 1] + u[2 * n // 3]) / 2
        last.weight.copy_(torch.stack([torch.zeros_like(dw), dw, 2 * dw]))
        last.bias.copy_(torch.stack([torch.zeros_like(db), db - t1, 2 * db - t1 - t2]))


def timed_rounds(predictors: dict, reqs: list, reps: int, walls: dict[str, list[float]], device):
    """A warm-up, then `reps` rounds of every predictor in turn (wall seconds into `walls`); the learned
    policy's last answers."""
    for predictor in predictors.values():
        predictor.warm_up(reqs)
    for _ in range(reps):
        for policy, predictor in predictors.items():
            sync(device)
            t0 = time.perf_counter()
            answered = predictor.answer_all(reqs, show_progress=False)
            sync(device)
            walls[policy].append(time.perf_counter() - t0)
            if policy == "learned":
                learned = answered
    return learned


def predict_rows(model_dir: Path, dtype: str, n: int, batch: int, reps: int, device) -> list[tuple]:
    """Every policy through predict's per-action queues at `batch` (text pass, head, only the chosen branch;
    image decode and preprocessing included, after a warm-up), `reps` rounds in turn, the head split in
    thirds (split_head). The learned policy's wall time over its mix bound (share x always-action wall
    time, from the same round): the median over rounds."""
    import statistics

    from vovnet.inference.predict import POLICIES, PredictOptions, Predictor, mix_bound, percentile
    from vovnet.inference.requests import Request
    from vovnet.model.factory import build_vovnet

    fresh(device)
    params = params_for(model_dir, dtype, "sdpa", False, 1, 4096)
    model, processor = build_vovnet(params, device=device)
    model.eval()
    walls: dict[str, list[float]] = {p: [] for p in POLICIES}
    amp = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    with tempfile.TemporaryDirectory() as tmp:
        recs, reqs = records(n), []
        for i, (rec, imgs) in enumerate(recs):
            rec["question"] = QUESTION_KINDS[i % len(QUESTION_KINDS)].format(i=i)  # spreads the head's scores
            path = Path(tmp) / f"{i}.png"
            imgs[0].save(path)
            reqs.append(Request(i + 1, rec, paths=[path], sizes=[imgs[0].size]))
        with torch.autocast(device.type, dtype=amp):  # its own context: autocast caches the weights it casts
            split_head(model, processor, params, recs, device)
        predictors = {
            p: Predictor(
                model,
                processor,
                params["vision_budget"],
                4096,
                device,
                PredictOptions(policy=p, batch_size=batch, max_new_tokens=8),
            )
            for p in POLICIES
        }
        with torch.autocast(device.type, dtype=amp):
            learned = timed_rounds(predictors, reqs, reps, walls, device)
    del model
    shares = {a: sum(r["action"] == a for r in learned.rows) / n for a in ("no", "coarse", "full")}
    bound = [walls["learned"][i] / mix_bound(shares, {p: walls[p][i] for p in POLICIES}) for i in range(reps)]
    ms = {p: statistics.median(w) / n * 1000 for p, w in walls.items()}
    mix = "/".join(f"{a}={sum(r['action'] == a for r in learned.rows)}" for a in ("no", "coarse", "full"))
    calls = "/".join(str(len(learned.batch_sizes[a])) for a in ("no", "coarse", "full"))
    p50 = percentile([r["latency_ms"] for r in learned.rows], 0.5)
    shape = f"{n} q, batch {batch}"
    return [
        (
            "learned policy (predict)",
            dtype,
            shape,
            f"{ms['learned']:.0f} ms/q",
            f"mix {mix}, calls {calls}",
            f"p50 {p50:.0f} ms",
            "",
            "",
        ),
        *[(f"always-{p} (predict)", dtype, shape, f"{ms[p]:.0f} ms/q", "", "", "", "") for p in POLICIES[1:]],
        (
            "learned / mix bound",
            dtype,
            f"{reps} rounds",
            f"{statistics.median(bound):.3f}x",
            f"min {min(bound):.3f} max {max(bound):.3f}",
            f"learned/full {ms['learned'] / ms['full']:.2f}",
            "",
            "",
        ),
    ]


def training_rows(args, model_dir: Path, dtypes: list[str], device, t_start: float) -> tuple[list[tuple], int]:
    """The stage-1/2 rows per dtype, eager attention and ZeRO-2; and the batch's sequence width."""
    rows: list[tuple] = []
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
            rows.append(
                (
                    f"stage {stage}, sdpa",
                    dtype,
                    f"{stage}{' ckpt' if ckpt else ''}",
                    f"{r['step_s'] * 1000:.0f}",
                    f"{r['tokens_s']:.0f}",
                    peak,
                    f"{pred:.2f}",
                    ratio,
                )
            )
    dtype = dtypes[-1]
    r = train_steps(params_for(model_dir, dtype, "eager", False, args.batch, length), 1, args.steps, device, recs)
    p = params_for(model_dir, dtype, "eager", False, args.batch, r["width"])
    pred = predicted_gib(p, "DDP", device)
    rows.append(
        (
            "stage 1, eager (vs sdpa)",
            dtype,
            "1",
            f"{r['step_s'] * 1000:.0f}",
            f"{r['tokens_s']:.0f}",
            "n/a (CPU)" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}",
            f"{pred:.2f}",
            "" if r["peak_gib"] is None else f"{r['peak_gib'] / pred:.2f}",
        )
    )
    if "float16" in dtypes:
        rows += fp16_vision_rows(model_dir, args, device, recs)
    rows.append(zero2_row(args, model_dir, dtypes[0], r["width"], device))
    return rows, r["width"]


def fp16_vision_rows(model_dir: Path, args, device, recs) -> list[tuple]:
    """Stage 1 under fp16 with the vision tower in fp32 (the project's default) against plain fp16."""
    out, times = [], {}
    for label, half in (("fp32 vision tower", False), ("plain fp16 (vision fp16)", True)):
        p = params_for(model_dir, "float16", "sdpa", True, args.batch, 4096)
        r = train_steps(p, 1, args.steps, device, recs, half_vision=half)
        times[half] = r["step_s"]
        peak = "n/a (CPU)" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        out.append(
            (
                f"stage 1, fp16, {label}",
                "float16",
                "1 ckpt",
                f"{r['step_s'] * 1000:.0f}",
                f"{r['tokens_s']:.0f}",
                peak,
                "",
                "",
            )
        )
    out[0] = out[0][:6] + (f"step x{times[False] / times[True]:.2f} of plain", "")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Compares peaks with `python -m vovnet plan`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--hidden", type=int, default=1024, help="LM width (8B: 4096)")
    ap.add_argument("--layers", type=int, default=8, help="LM layers (8B: 36)")
    ap.add_argument("--vision-depth", type=int, default=8, help="vision blocks (8B: 27)")
    ap.add_argument("--dtypes", default="float16,bfloat16", help="comma-separated; bf16 is skipped on GPUs without it")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per row after one warm-up")
    ap.add_argument("--questions", type=int, default=48, help="questions for the predict rows (learned vs always-*)")
    ap.add_argument("--predict-batch", type=int, help="predict's batch size (default: --batch)")
    ap.add_argument("--predict-reps", type=int, default=3, help="rounds of the predict rows (the median is shown)")
    ap.add_argument("--predict-only", action="store_true", help="only the predict rows (no training rows)")
    ap.add_argument("--minutes", type=float, default=8.0, help="stop adding rows after this budget")
    ap.add_argument("--port", type=int, default=29517, help="rendezvous port of the ZeRO-2 process")
    ap.add_argument(
        "--part",
        choices=["all", "zero2", "memory8b", "deepspeed", "device"],
        default="all",
        help="all: the scaled model's rows; memory8b: the plan against peaks on the real 8B shapes, random "
        "weights, sm_70 attention imitated, capped to --caps GiB (benchmarks/gpu_memory_8b.py); deepspeed: "
        "stage 1, stage 2, save and a kill-and-resume under ZeRO-2 and ZeRO-3 on one GPU "
        "(benchmarks/gpu_deepspeed.py); device: memory8b then deepspeed, the prepared device check",
    )
    ap.add_argument("--caps", default="32,16", help="memory8b: GiB caps per row, comma-separated ('' for none)")
    ap.add_argument("--lm-layers", type=int, help="memory8b: decoder layers (default: the 8B's 36; smoke runs: 1)")
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part == "zero2":
        return zero2_child(args)
    if args.part in ("memory8b", "device"):
        import gpu_memory_8b  # benchmarks/ is this script's folder, first on sys.path

        caps = [float(c) for c in args.caps.split(",") if c]
        gpu_memory_8b.run(args.device, args.length or 4096, caps, args.lm_layers)
    if args.part in ("deepspeed", "device"):
        import gpu_deepspeed

        gpu_deepspeed.report(args.device)
    if args.part in ("memory8b", "deepspeed", "device"):
        return None
    if args.questions < 3:
        sys.exit("gpu_check: --questions must be at least 3 (a third of them per action)")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible (use --device cpu for a smoke run)")
    t_start = time.time()
    rows: list[tuple] = []
    dtypes = [d for d in args.dtypes.split(",") if d]
    if "bfloat16" in dtypes and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        dtypes.remove("bfloat16")
        rows.append(("bf16", "bfloat16", "", "skipped: this GPU has no bf16", "", "", "", ""))
    width = None
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "scaled-qwen3-vl"
        build_scaled_model(model_dir, args.hidden, args.layers, args.vision_depth)
        if not args.predict_only:
            train_rows, width = training_rows(args, model_dir, dtypes, device, t_start)
            rows += train_rows
        rows += predict_rows(
            model_dir, dtypes[-1], args.questions, args.predict_batch or args.batch, args.predict_reps, device
        )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"\ngpu_check on {name}; scaled Qwen3-VL: hidden {args.hidden}, {args.layers} layers, vision depth "
        f"{args.vision_depth}, vocab 151,936; batch {args.batch}, FULL image 980 tokens"
        f"{f', sequence {width} tokens' if width else ''}; {time.time() - t_start:.0f} s\n"
    )
    head = ("run", "dtype", "stage", "step ms", "tokens/s", "peak GiB", "plan GiB", "peak/plan")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main()
