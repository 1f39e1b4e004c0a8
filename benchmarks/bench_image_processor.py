"""The image processor predict and training use (transformers' torchvision backend, `load_processor`) against
transformers' PIL backend: milliseconds per image and the largest pixel difference, at every preset's
COARSE and FULL budgets, on drawn images of the demo's size, the samples' size and photo size.

    python benchmarks/bench_image_processor.py [--model-dir models/tiny-qwen3-vl] [--reps 20]

Pixel differences are in 8-bit levels of the normalised values (one level = 1/127.5 with mean and std
0.5); image_grid_thw must be identical (the script stops otherwise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from vovnet.model.budgets import image_inputs  # noqa: E402
from vovnet.model.loading import load_processor  # noqa: E402


def drawn(w: int, h: int) -> Image.Image:
    img = Image.new("RGB", (w, h), (200, 180, 40))
    d = ImageDraw.Draw(img)
    d.ellipse([w // 5, h // 5, w * 3 // 5, h * 3 // 5], fill=(20, 60, 220))
    d.rectangle([w // 2, h // 2, w - 2, h - 2], fill=(230, 30, 30))
    return img


def ms_per_image(processor, img, budget: dict, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        image_inputs(processor, [img], budget)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    from transformers import AutoImageProcessor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default="models/tiny-qwen3-vl")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    fast = load_processor(args.model_dir, {"trust_remote_code": False}).image_processor
    slow = AutoImageProcessor.from_pretrained(args.model_dir, backend="pil")
    print(f"{type(fast).__name__} (torchvision) vs {type(slow).__name__}; median of {args.reps} calls, 1 torch thread")
    print("| preset | budget | image | grid | torchvision ms | PIL ms | PIL / torchvision | max diff (levels) |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for preset in ("sample", "demo", "paper"):
        budgets = YAML(typ="safe").load((ROOT / "presets" / f"{preset}.yaml").read_text())["vision_budget"]
        for action, budget in budgets.items():
            for size in ((32, 32), (64, 64), (1440, 1080)):
                img = drawn(*size)
                a, b = image_inputs(fast, [img], budget), image_inputs(slow, [img], budget)
                if not torch.equal(a["image_grid_thw"], b["image_grid_thw"]):
                    sys.exit(f"{preset} {action} {size}: grids differ")
                diff = float((a["pixel_values"] - b["pixel_values"]).abs().max()) * 127.5
                tf, ts = ms_per_image(fast, img, budget, args.reps), ms_per_image(slow, img, budget, args.reps)
                grid = "x".join(str(int(x)) for x in a["image_grid_thw"][0].tolist())
                print(
                    f"| {preset} | {action} | {size[0]}x{size[1]} | {grid} | {tf:.2f} | {ts:.2f} | {ts / tf:.2f} "
                    f"| {diff:.0f} |"
                )


if __name__ == "__main__":
    main()
