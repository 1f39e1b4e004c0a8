"""The TextVQA sample: rendered words in the hub's parquet layout, ten answers per question."""

from __future__ import annotations

import random
from pathlib import Path

from vovnet.data.samples import png, word_image, write_hf_parquet

ORDER = 3


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    import datasets

    feats = datasets.Features(
        {
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": datasets.Image(),
            "answers": datasets.Sequence(datasets.Value("string")),
            "image_id": datasets.Value("string"),
            "ocr_tokens": datasets.Sequence(datasets.Value("string")),
        }
    )
    words = ["STOP", "CAFE", "42", "OPEN", "EXIT", "SALE", "7", "BUS"]
    rows = []
    for i, w in enumerate(words):
        answers = [w.lower()] * 7 + [f"{w.lower()} sign"] * 2 + ["unanswerable"]
        rows.append(
            {
                "question_id": 34600 + i,
                "question": "What is written in the image?",
                "image": {"bytes": png(word_image(w)), "path": None},
                "answers": answers,
                "image_id": f"{i:016x}",
                "ocr_tokens": [w.lower()],
            }
        )
    write_hf_parquet(out, rows, feats, "validation")
