"""The small offline sample sources in data/samples/: shared drawing and writing helpers, and the driver
that runs the sample makers it is handed (vovnet/tasks/<name>/sample.py), each in its dataset's real raw
layout.

The questions are synthetic (coloured images, drawn shapes, rendered words) and labelled as such; some
need the image and some do not, so a value-of-vision policy has something to learn even here.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

from vovnet.data.interfaces import SampleMaker

COLOURS = {"red": (200, 30, 30), "green": (30, 160, 40), "blue": (30, 60, 200), "yellow": (230, 210, 40)}
SHAPES = ["circle", "square", "triangle"]


def jpeg(img: Image.Image, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def colour_image(rng: random.Random, colour: str, size: int = 64) -> Image.Image:
    base = COLOURS[colour]
    img = Image.new("RGB", (size, size), base)
    px = img.load()
    for _ in range(size * 4):  # light noise so JPEGs are photo-like rather than flat
        x, y = rng.randrange(size), rng.randrange(size)
        px[x, y] = tuple(min(255, max(0, c + rng.randint(-40, 40))) for c in base)
    return img


def shape_image(shape: str, rng: random.Random, size: int = 64) -> Image.Image:
    img = Image.new("RGB", (size, size), tuple(rng.randint(225, 255) for _ in range(3)))
    d = ImageDraw.Draw(img)
    m = rng.randint(8, 14)
    box = (m, m, size - m, size - m)
    if shape == "circle":
        d.ellipse(box, fill=(20, 20, 20))
    elif shape == "square":
        d.rectangle(box, fill=(20, 20, 20))
    else:
        d.polygon([(size // 2, 10), (size - 10, size - 10), (10, size - 10)], fill=(20, 20, 20))
    return img


def word_image(word: str) -> Image.Image:
    img = Image.new("RGB", (96, 48), (255, 255, 255))
    ImageDraw.Draw(img).text((8, 16), word, fill=(0, 0, 0))
    return img


def write_tsv(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])


def write_hf_parquet(folder: Path, rows: list[dict], features, split: str, config: str | None = None) -> None:
    import datasets

    ds = datasets.Dataset.from_list(rows, features=features)
    sub = folder / (config or "data")
    sub.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(sub / f"{split}-00000-of-00001.parquet"))


def make_samples(makers: dict[str, SampleMaker], out: str | Path = "data/samples", seed: int = 0) -> None:
    """Every task's sample under out/<task>, drawn from one seeded generator in the makers' ORDER; the
    caller loads the makers (`python -m vovnet.data make-samples` loads every task's)."""
    out = Path(out)
    rng = random.Random(seed)
    for _, name in sorted((maker.ORDER, name) for name, maker in makers.items()):
        shutil.rmtree(out / name, ignore_errors=True)
        makers[name].make_sample(out / name, rng, seed)
