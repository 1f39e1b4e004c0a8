"""Training step, evaluation and data-loader throughput on the tiny model (CPU), side by side.

3. samples/s of an always-full training step (stage 1, LoRA fwd+bwd) vs the VoVNet stage-2 step on the
   same batch, with text-prefix reuse on and off; and the stage-2 step that trains the LoRA under
   gradient checkpointing (the paper preset), reuse on and off.
4. questions/s of batched generation, batch 1 vs 8.
5. data loader: samples/s of decode + resize + processor (all three actions) per worker, at the paper
   preset's budgets on photo-sized JPEGs, and the workers one V100 step would need at 8B scale.

    python benchmarks/bench_model.py
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vovnet.config import load_params  # noqa: E402
from vovnet.io_utils import read_jsonl  # noqa: E402

PAPER_BUDGET = {
    "coarse": {"min_pixels": 3136, "max_pixels": 65536},
    "full": {"min_pixels": 65536, "max_pixels": 1003520},
}
# Stated assumption for the V100 arithmetic: one 8B LoRA stage-2 sample (text pass + coarse + full passes,
# ~1.2k tokens, fp16, gradient checkpointing) takes about 1.5 s per GPU.
V100_SECONDS_PER_SAMPLE = 1.5


def workspace(tmp: Path, params: dict) -> tuple[Path, list[dict]]:
    from vovnet.data.download import fetch
    from vovnet.data.interfaces import Adapter
    from vovnet.data.normalize import normalize_dataset
    from vovnet.model.tiny import build_tiny_model
    from vovnet.registry import get_adapter
    from vovnet.tasks.shapes_vqa import adapter as shapes_vqa

    cfg = dict(params["datasets"]["mmbench"], splits=["dev"], source=str(ROOT / "data" / "samples" / "mmbench"))
    adapter = get_adapter("mmbench", Adapter)
    fetch("mmbench", cfg, tmp / "raw", adapter)
    out = tmp / "processed" / "mmbench"
    normalize_dataset("mmbench", cfg, tmp / "raw", out, adapter=adapter, seed=0, max_image_pixels=89_478_485)
    build_tiny_model(tmp / "tiny", params["model"], shapes_vqa.vocabulary())  # as the model stage builds it
    return tmp / "tiny", list(read_jsonl(tmp / "processed" / "mmbench" / "mmbench_dev.jsonl"))


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def bench_train(params, model_dir, records, root, rows):
    from vovnet.model.encoding import ActionCollator, Encoder, RecordDataset
    from vovnet.model.factory import build_vovnet

    params = {**params, "model": {**params["model"], "name": str(model_dir)}}
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    ds = RecordDataset(records[:8], Encoder(processor, params["vision_budget"], 2048), root)
    batch = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)([ds[i] for i in range(8)])

    def full_step():
        model.zero_grad(set_to_none=True)
        model(batch, stage=1, action="full")["loss"].backward()

    def stage2(reuse, train_lora=False):
        def step():
            model.zero_grad(set_to_none=True)
            model(batch, stage=2, policy_cfg=params["policy"], prefix_reuse=reuse, train_lora=train_lora)[
                "loss"
            ].backward()

        return step

    t_full = timed(full_step, 15)
    t_s2 = timed(stage2(True), 15)
    t_s2_plain = timed(stage2(False), 15)
    n = 8
    rows.append(("train: always-full step", f"{n / t_full:.1f} samples/s", "", "", "", ""))
    rows.append(
        (
            "train: stage-2 step (prefix reuse)",
            f"{n / t_s2:.1f} samples/s",
            "always-full",
            f"{t_s2 / t_full:.2f}x time",
            "<= 1.5x",
            "yes" if t_s2 / t_full <= 1.5 else "no",
        )
    )
    rows.append(
        (
            "train: stage-2 step (no reuse)",
            f"{n / t_s2_plain:.1f} samples/s",
            "stage-2 with reuse",
            f"reuse saves {100 * (1 - t_s2 / t_s2_plain):.0f}% of step time",
            "report",
            "-",
        )
    )
    model.train()
    model.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.lm.enable_input_require_grads()
    t_gc = timed(stage2(True, train_lora=True), 10)
    t_gc_plain = timed(stage2(False, train_lora=True), 10)
    model.lm.gradient_checkpointing_disable()
    model.eval()
    rows.append(
        (
            "train: stage-2 LoRA+GC (reuse)",
            f"{n / t_gc:.1f} samples/s",
            "LoRA+GC, no reuse",
            f"reuse saves {100 * (1 - t_gc / t_gc_plain):.0f}% of step time",
            "report",
            "-",
        )
    )
    return model, processor


def bench_eval(params, model, processor, records, root, rows):
    from vovnet.model.encoding import Encoder, RecordDataset
    from vovnet.model.generation import generate_all

    ds = RecordDataset(records[:16], Encoder(processor, params["vision_budget"], 2048), root, with_target=False)
    model.eval()
    res = {}
    for bs in (1, 8):
        t0 = time.perf_counter()
        generate_all(model, processor, ds, bs, 8, "cpu", 4096)
        res[bs] = len(ds) / (time.perf_counter() - t0)
    rows.append(("eval: batch 1", f"{res[1]:.1f} q/s (3 actions)", "", "", "", ""))
    rows.append(("eval: batch 8", f"{res[8]:.1f} q/s (3 actions)", "batch 1", f"{res[8] / res[1]:.2f}x", "report", "-"))


def bench_loader(processor, rows, tmp: Path):
    import numpy as np
    from PIL import Image
    from torch.utils.data import DataLoader

    from vovnet.data.image_store import ImageStoreWriter, describe
    from vovnet.model.encoding import ActionCollator, Encoder, RecordDataset

    rng = np.random.default_rng(0)
    store = ImageStoreWriter(tmp / "photos")
    recs = []
    for i in range(64):
        arr = np.clip(rng.normal(128, 50, (480, 640, 3)), 0, 255).astype("uint8")
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=85)
        meta = describe(buf.getvalue())
        store.add(buf.getvalue(), meta)
        recs.append(
            {
                "id": f"p{i}",
                "dataset": "photos",
                "question": "What is shown?",
                "hint": None,
                "choices": ["a", "b", "c", "d"],
                "answer": {"label": 0, "text": "A", "all": ["A"]},
                "images": [meta],
                "meta": {},
            }
        )
    store.close()
    ds = RecordDataset(recs * 4, Encoder(processor, PAPER_BUDGET, 8192), tmp)  # 256 samples: worker start-up amortised
    coll = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)
    per = {}
    for w in (0, 1, 2):
        dl = DataLoader(ds, batch_size=4, num_workers=w, collate_fn=coll)
        t0 = time.perf_counter()
        for _ in dl:
            pass
        per[w] = len(ds) / (time.perf_counter() - t0)
    need = 1 / (per[0] * V100_SECONDS_PER_SAMPLE)
    rows.append(
        (
            "loader: 640x480 JPEG, paper budgets",
            f"{per[0]:.1f} samples/s (in-process)",
            "1 / 2 workers",
            f"{per[1]:.1f} / {per[2]:.1f} samples/s",
            "report",
            "-",
        )
    )
    rows.append(
        (
            "loader: workers per V100 at 8B",
            f"{need:.2f} -> {max(1, int(np.ceil(need)))} worker(s)",
            f"step {V100_SECONDS_PER_SAMPLE} s/sample",
            "",
            "arithmetic",
            "-",
        )
    )


def main() -> None:
    torch.set_num_threads(2)
    params = load_params(ROOT / "params.yaml")
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="vovnet-bench-model-") as tmp:
        tmp = Path(tmp)
        model_dir, records = workspace(tmp, params)
        model, processor = bench_train(params, model_dir, records, tmp / "processed", rows)
        bench_eval(params, model, processor, records, tmp / "processed", rows)
        bench_loader(processor, rows, tmp)
    print(f"{'figure':<38} {'this project':<32} {'reference':<20} {'ratio':<22} {'target':<10} met")
    for r in rows:
        print(f"{r[0]:<38} {r[1]:<32} {r[2]:<20} {r[3]:<22} {r[4]:<10} {r[5]}")


if __name__ == "__main__":
    main()
