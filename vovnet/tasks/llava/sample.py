"""The LLaVA sample: LLaVA-Instruct's JSON layout with bare image names under images/."""

from __future__ import annotations

import json
import random
from pathlib import Path

from vovnet.data.samples import COLOURS, colour_image, jpeg

ORDER = 4


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(8):
        colour = list(COLOURS)[i % 4]
        name = f"{100000 + i:012d}.jpg"
        (out / "images" / name).write_bytes(jpeg(colour_image(rng, colour)))
        items.append(
            {
                "id": f"{100000 + i:012d}",
                "image": name,
                "conversations": [
                    {"from": "human", "value": "<image>\nWhat colour is this image?"},
                    {"from": "gpt", "value": f"The image is {colour}."},
                ],
            }
        )
    (out / "llava_sample.json").write_text(json.dumps(items, indent=1) + "\n")
