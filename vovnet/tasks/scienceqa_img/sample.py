"""The ScienceQA-IMG sample: lmms-lab/ScienceQA's layout as `download` leaves it: a README listing the
ScienceQA-FULL and ScienceQA-IMG configs (validation, test), with only ScienceQA-IMG/test-* present.
Two to five options per question, some with a context (`hint`) that answers them without the image."""

from __future__ import annotations

import random
from pathlib import Path

from vovnet.data.samples import COLOURS, SHAPES, colour_image, jpeg, png, shape_image

ORDER = 7
CARD = """---
configs:
- config_name: ScienceQA-FULL
  data_files:
  - split: validation
    path: ScienceQA-FULL/validation-*
  - split: test
    path: ScienceQA-FULL/test-*
- config_name: ScienceQA-IMG
  data_files:
  - split: validation
    path: ScienceQA-IMG/validation-*
  - split: test
    path: ScienceQA-IMG/test-*
---
# ScienceQA-shaped synthetic sample
"""


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    import datasets

    v = datasets.Value
    feats = datasets.Features(
        {
            "image": datasets.Image(),
            "question": v("string"),
            "choices": datasets.Sequence(v("string")),
            "answer": v("int8"),
            "hint": v("string"),
            **{
                k: v("string")
                for k in ("task", "grade", "subject", "topic", "category", "skill", "lecture", "solution")
            },
        }
    )
    rows = []
    for i in range(10):
        if i % 2 == 0:  # needs the image
            colour = list(COLOURS)[i // 2 % 4]
            n = 2 + i // 2 % 4  # 2, 3, 4 or 5 options
            opts = (list(COLOURS) + ["purple"])[:n]
            if colour not in opts:
                opts[-1] = colour
            rng.shuffle(opts)
            row = {
                "question": "Which colour fills the picture?",
                "choices": opts,
                "answer": opts.index(colour),
                "hint": "",
                "image": {"bytes": jpeg(colour_image(rng, colour)), "path": None},
                "subject": "natural science",
                "topic": "physics",
                "category": "Colour",
                "skill": "Identify colours",
            }
        else:  # the context answers it
            shape = SHAPES[i // 2 % 3]
            opts = list(SHAPES)
            rng.shuffle(opts)
            row = {
                "question": "Which shape does the text say the sign has?",
                "choices": opts,
                "answer": opts.index(shape),
                "hint": f"The sign in the picture is a {shape}.",
                "image": {"bytes": png(shape_image(shape, rng)), "path": None},
                "subject": "language science",
                "topic": "reading-comprehension",
                "category": "Reading",
                "skill": "Read a description",
            }
        rows.append({**row, "task": "closed choice", "grade": f"grade{3 + i % 4}", "lecture": "", "solution": ""})
    folder = out / "ScienceQA-IMG"
    folder.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=feats).to_parquet(str(folder / "test-00000-of-00001.parquet"))
    (out / "README.md").write_text(CARD, encoding="utf-8")
