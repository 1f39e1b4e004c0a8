"""The MMMU sample: two subject configs (Art, Math) in the hub's parquet layout, with a README `configs:`."""

from __future__ import annotations

import random
from pathlib import Path

from vovnet.data.samples import COLOURS, colour_image, jpeg, png, shape_image, write_hf_parquet

ORDER = 2


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    import datasets

    img_feats = {f"image_{k}": datasets.Image() for k in range(1, 8)}
    feats = datasets.Features(
        {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "options": datasets.Value("string"),
            "explanation": datasets.Value("string"),
            **img_feats,
            "img_type": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "topic_difficulty": datasets.Value("string"),
            "question_type": datasets.Value("string"),
            "subfield": datasets.Value("string"),
        }
    )
    blank = {f"image_{k}": None for k in range(1, 8)}
    subjects = {"Art": [], "Math": []}
    for i, colour in enumerate(["red", "blue", "green", "yellow"]):
        opts = list(COLOURS)
        subjects["Art"].append(
            {
                **blank,
                "id": f"validation_Art_{i + 1}",
                "question": "<image 1> Which colour dominates this painting?",
                "options": str(opts),
                "image_1": {"bytes": jpeg(colour_image(rng, colour)), "path": None},
                "answer": "ABCD"[opts.index(colour)],
                "question_type": "multiple-choice",
                "img_type": "['Paintings']",
                "subfield": "Colour",
                "topic_difficulty": "Easy",
                "explanation": "",
            }
        )
    for i, (a, b) in enumerate([(2, 3), (12, 30), (7, 8)]):
        subjects["Math"].append(
            {
                **blank,
                "id": f"validation_Math_{i + 1}",
                "question": f"What is {a} + {b}?",
                "options": "[]",
                "answer": str(a + b),
                "question_type": "open",
                "img_type": "[]",
                "subfield": "Arithmetic",
                "topic_difficulty": "Easy",
                "explanation": "",
            }
        )
    subjects["Math"].append(
        {
            **blank,
            "id": "validation_Math_4",
            "question": "<image 1> and <image 2>: which image shows a circle?",
            "options": "['The first', 'The second']",
            "answer": "B",
            "image_1": {"bytes": png(shape_image("square", rng)), "path": None},
            "image_2": {"bytes": png(shape_image("circle", rng)), "path": None},
            "question_type": "multiple-choice",
            "img_type": "['Diagrams']",
            "subfield": "Geometry",
            "topic_difficulty": "Easy",
            "explanation": "",
        }
    )
    configs = []
    for subject, rows in subjects.items():
        write_hf_parquet(out, rows, feats, "validation", subject)
        configs.append(
            f"- config_name: {subject}\n  data_files:\n  - split: validation\n    path: {subject}/validation-*"
        )
    (out / "README.md").write_text("---\nconfigs:\n" + "\n".join(configs) + "\n---\n# MMMU-shaped synthetic sample\n")
