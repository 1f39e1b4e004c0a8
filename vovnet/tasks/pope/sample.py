"""The POPE sample: lmms-lab/POPE's layout as `download` leaves it: a README listing the `default` config
(data/test-*, three shards) and the `Full` one (a split per category), with only the default's files."""

from __future__ import annotations

import random
from pathlib import Path

from vovnet.data.samples import SHAPES, png, shape_image

ORDER = 6
CATEGORIES = ("adversarial", "popular", "random")
CARD = """---
configs:
- config_name: default
  data_files:
  - split: test
    path: data/test-*
- config_name: Full
  data_files:
  - split: adversarial
    path: Full/adversarial-*
  - split: popular
    path: Full/popular-*
  - split: random
    path: Full/random-*
---
# POPE-shaped synthetic sample
"""


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    import datasets

    feats = datasets.Features(
        {
            "id": datasets.Value("string"),
            "question_id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "image_source": datasets.Value("string"),
            "image": datasets.Image(),
            "category": datasets.Value("string"),
        }
    )
    rows = []
    for i in range(12):
        shape = SHAPES[i % len(SHAPES)]
        asked = shape if i % 2 == 0 else SHAPES[(i + 1) % len(SHAPES)]
        rows.append(
            {
                "id": str(i),
                "question_id": str(i + 1),
                "question": f"Is there a {asked} in the image?",
                "answer": "yes" if asked == shape else "no",
                "image_source": f"COCO_val2014_{i:012d}",
                "image": {"bytes": png(shape_image(shape, rng)), "path": None},
                "category": CATEGORIES[i // 4],
            }
        )
    (out / "data").mkdir(parents=True, exist_ok=True)
    for k in range(3):
        part = datasets.Dataset.from_list(rows[k * 4 : (k + 1) * 4], features=feats)
        part.to_parquet(str(out / "data" / f"test-{k:05d}-of-00003.parquet"))
    (out / "README.md").write_text(CARD, encoding="utf-8")
