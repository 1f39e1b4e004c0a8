"""The MMStar sample: Lin-Chen/MMStar's layout (README `configs:` naming the root file mmstar.parquet as
config `val`, split `val`), the options inline in `question`, `meta_info` a {source, split, image_path} struct."""

from __future__ import annotations

import random
from pathlib import Path

from vovnet.data.samples import COLOURS, SHAPES, colour_image, jpeg, png, shape_image

ORDER = 5
CARD = """---
configs:
- config_name: val
  data_files:
  - split: val
    path: mmstar.parquet
---
# MMStar-shaped synthetic sample
"""
# (category, l2_category) as MMStar names them: 6 core capabilities, one of their dimensions each
CATEGORIES = [
    ("coarse perception", "image scene and topic"),
    ("fine-grained perception", "recognition"),
    ("instance reasoning", "single-instance reasoning"),
    ("logical reasoning", "diagram reasoning"),
    ("science & technology", "geography & earth science & agriculture"),
    ("math", "geometry"),
]


def inline(stem: str, options: list[str]) -> str:
    return stem + "\nOptions: " + ", ".join(f"{letter}: {text}" for letter, text in zip("ABCD", options))


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    import datasets

    feats = datasets.Features(
        {
            "index": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": datasets.Image(),
            "answer": datasets.Value("string"),
            "category": datasets.Value("string"),
            "l2_category": datasets.Value("string"),
            "meta_info": {
                "source": datasets.Value("string"),
                "split": datasets.Value("string"),
                "image_path": datasets.Value("string"),
            },
        }
    )
    rows = []
    for i in range(12):
        category, l2 = CATEGORIES[i % len(CATEGORIES)]
        if i % 2 == 0:
            colour = list(COLOURS)[i // 2 % 4]
            opts = list(COLOURS)
            rng.shuffle(opts)
            stem, gold, image = "What is the main colour of this image?", colour, jpeg(colour_image(rng, colour))
        else:
            shape = SHAPES[i // 2 % 3]
            opts = list(SHAPES) + ["star"]
            rng.shuffle(opts)
            stem, gold, image = "Which shape is drawn in the image?", shape, png(shape_image(shape, rng))
        rows.append(
            {
                "index": i,
                "question": inline(stem, opts),
                "image": {"bytes": image, "path": None},
                "answer": "ABCD"[opts.index(gold)],
                "category": category,
                "l2_category": l2,
                "meta_info": {
                    "source": "MMBench" if i % 3 == 0 else "SEEDBench_IMG",
                    "split": "val",
                    "image_path": f"images/{i}.jpg",
                },
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=feats).to_parquet(str(out / "mmstar.parquet"))
    (out / "README.md").write_text(CARD, encoding="utf-8")
