"""The MMBench sample: VLMEvalKit's TSV layout (base64 images, circular copies whose image cell names
the original's index), a dev file with answers and a test file without."""

from __future__ import annotations

import base64
import random
from pathlib import Path

from vovnet.data.mmbench_layout import TSV_COLUMNS
from vovnet.data.samples import COLOURS, SHAPES, colour_image, jpeg, png, shape_image, write_tsv

ORDER = 0
FACTS = [
    ("Which of these is a fruit?", ["apple", "car", "chair", "shoe"]),
    ("Which animal can fly?", ["eagle", "cow", "horse", "pig"]),
    ("Which of these is a planet?", ["Mars", "Paris", "Nile", "Everest"]),
    ("Which number is even?", ["8", "3", "5", "7"]),
    ("Which is a primary colour?", ["blue", "pink", "brown", "grey"]),
    ("Which of these is frozen water?", ["ice", "sand", "wood", "glass"]),
]
MMBENCH_COLUMNS = list(TSV_COLUMNS)


def mmbench_rows(rng: random.Random, n_colour: int = 10, n_shape: int = 6) -> list[dict]:
    """Original questions plus circular copies (index + k*1e6) whose image cell refers to the original."""
    items = []
    for i in range(n_colour):
        colour = list(COLOURS)[i % 4]
        opts = list(COLOURS)
        rng.shuffle(opts)
        items.append(
            (
                "What is the main colour of this image?",
                opts,
                opts.index(colour),
                jpeg(colour_image(rng, colour)),
                "colour_recognition",
                "perception",
            )
        )
    for i in range(n_shape):
        shape = SHAPES[i % 3]
        opts = list(SHAPES)
        rng.shuffle(opts)
        items.append(
            (
                "Which shape is drawn in the image?",
                opts,
                opts.index(shape),
                png(shape_image(shape, rng)),
                "shape_recognition",
                "perception",
            )
        )
    for q, opts in FACTS:
        shuffled = list(opts)
        rng.shuffle(shuffled)
        items.append(
            (
                q,
                shuffled,
                shuffled.index(opts[0]),
                jpeg(colour_image(rng, rng.choice(list(COLOURS)))),
                "commonsense",
                "reasoning",
            )
        )
    rows = []
    for i, (q, opts, ans, img, cat, l2) in enumerate(items):
        base = i + 1
        for k in range(len(opts)):  # CircularEval: rotation k shifts options left by k
            rot = opts[k:] + opts[:k]
            row = {
                "index": base + k * 1_000_000,
                "question": q,
                "hint": "Synthetic sample item." if i % 5 == 0 else "",
                "answer": "ABCD"[rot.index(opts[ans])],
                "category": cat,
                "source": "vovnet-synthetic",
                "l2-category": l2,
                "comment": "",
                "split": "dev",
                "image": base64.b64encode(img).decode() if k == 0 else str(base),
            }
            for j, letter in enumerate("ABCD"):
                row[letter] = rot[j] if j < len(rot) else ""
            rows.append(row)
    return rows


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    write_tsv(out / "MMBench_DEV_EN.tsv", mmbench_rows(rng), MMBENCH_COLUMNS)
    test_rows = [{**r, "index": r["index"], "split": "test"} for r in mmbench_rows(random.Random(seed + 1), 2, 2)]
    write_tsv(out / "MMBench_TEST_EN.tsv", test_rows, [c for c in MMBENCH_COLUMNS if c != "answer"])
