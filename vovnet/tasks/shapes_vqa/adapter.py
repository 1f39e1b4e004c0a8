"""A generated VQA set whose need for vision is known by construction (the `demo` preset's data).

Every image is white with one large coloured shape and a small textured square in the top-left corner.
Three question families, recorded in `meta.family`:
  - text:   the hint states the answer (no vision needed);
  - coarse: the large shape's colour (survives the COARSE resize);
  - full:   the corner's texture, 1-pixel stripes or checks or flat grey of the same mean (a 2x
            downsample averages every texture to the same grey, so only FULL shows it).
Half the questions (by `open_fraction`) are open short answers, the rest 4-option multiple choice.

`download@` writes the generator spec (`datasets.<name>.generator`) to data/raw/<name>/generator.json;
this adapter renders PNGs from it deterministically (a seeded RNG per split), so no image is committed.
Images are unique over all splits, so no held-out item shares an image with a training item.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageDraw

from vovnet import VovnetError
from vovnet.data.records import ImageRef, Row, make_record

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 40, 170),
    "orange": (250, 130, 10),
    "pink": (250, 120, 190),
    "cyan": (20, 200, 210),
}
SHAPES = ("circle", "square", "triangle")
WORDS = (
    "apple",
    "river",
    "candle",
    "garden",
    "pencil",
    "rocket",
    "window",
    "tiger",
    "violin",
    "bridge",
    "cloud",
    "forest",
    "ladder",
    "marble",
    "planet",
    "saddle",
)
# The detail: ink (0) or paper (255) per pixel, or flat 128 - every texture's mean - for `plain`.
TEXTURES = {
    "horizontal": lambda x, y: 255 * (y % 2),
    "vertical": lambda x, y: 255 * (x % 2),
    "checked": lambda x, y: 255 * ((x + y) % 2),
    "plain": lambda x, y: 128,
}
FAMILIES = ("text", "coarse", "full")
SPEC_FILE = "generator.json"
SPEC_DEFAULTS = {
    "seed": 0,
    "image_size": 64,
    "sizes": {"train": 1200, "policy": 300, "heldout": 300},
    "open_fraction": 0.5,
}


def vocabulary() -> list[str]:
    """The set's own words and question stems: the `model` stage trains the tiny model's tokenizer on them
    (vovnet/model/tiny.py), so a code word or colour is one token."""
    return [
        " ".join(COLOURS),
        " ".join(WORDS),
        " ".join(SHAPES),
        " ".join(TEXTURES),
        "What is the code word? The code word is",
        "What colour is the large shape?",
        "What pattern fills the top-left corner?",
    ]


def read_spec(raw_dir: Path) -> dict:
    path = raw_dir / SPEC_FILE
    if not path.exists():
        raise VovnetError(f"{path}: no generator spec (set datasets.<name>.source: generate and run download@)")
    spec = {**SPEC_DEFAULTS, **json.loads(path.read_text(encoding="utf-8"))}
    unknown = set(spec) - set(SPEC_DEFAULTS)
    if unknown:
        raise VovnetError(f"{path}: unknown generator keys {sorted(unknown)} (known: {sorted(SPEC_DEFAULTS)})")
    if int(spec["image_size"]) < 32 or int(spec["image_size"]) % 16:
        raise VovnetError(f"{path}: image_size must be a multiple of 16 and at least 32, got {spec['image_size']}")
    if not 0 <= float(spec["open_fraction"]) <= 1:
        raise VovnetError(f"{path}: open_fraction must be in [0, 1], got {spec['open_fraction']}")
    return spec


def render(size: int, colour: str, shape: str, texture: str, rng: random.Random) -> bytes:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    # The shape keeps clear of the textured corner; its size and place vary so every image differs.
    r = rng.uniform(0.24, 0.30) * size
    cx, cy = rng.uniform(0.60, 0.66) * size, rng.uniform(0.60, 0.66) * size
    box = (cx - r, cy - r, cx + r, cy + r)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    ink = TEXTURES[texture]
    for y in range(size // 4):  # the top-left quarter-width square: one 8-pixel patch at size 32
        for x in range(size // 4):
            img.putpixel((x, y), (ink(x, y),) * 3)
    # A sparse grey speckle: content differences that make each image unique without hiding anything.
    for _ in range(6):
        x, y = rng.randrange(size // 4, size), rng.randrange(0, size // 4)
        img.putpixel((x, y), (200, 200, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _question(family: str, colour: str, texture: str, word: str) -> tuple[str, str | None, str, list[str]]:
    """(question, hint, answer, the answer's alternatives for multiple choice)."""
    if family == "text":
        return "What is the code word?", f"The code word is {word}.", word, list(WORDS)
    if family == "coarse":
        return "What colour is the large shape?", None, colour, list(COLOURS)
    return "What pattern fills the top-left corner?", None, texture, list(TEXTURES)


@lru_cache(maxsize=4)
def generate(spec_json: str) -> dict[str, list[dict]]:
    spec = json.loads(spec_json)
    size, seen, out = int(spec["image_size"]), set(), {}
    for split in sorted(spec["sizes"]):
        rng = random.Random(f"{spec['seed']}:{split}")
        rows = []
        while len(rows) < int(spec["sizes"][split]):
            family = FAMILIES[len(rows) % len(FAMILIES)]  # balanced families
            colour, shape = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
            texture, word = rng.choice(sorted(TEXTURES)), rng.choice(WORDS)
            png = render(size, colour, shape, texture, rng)
            is_open = rng.random() < float(spec["open_fraction"])
            question, hint, answer, pool = _question(family, colour, texture, word)
            choices = None
            if not is_open:
                choices = sorted(rng.sample([p for p in pool if p != answer], 3) + [answer], key=lambda _: rng.random())
            digest = hashlib.sha256(png).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            rows.append(
                {
                    "key": f"{split}-{len(rows):06d}",
                    "png": png,
                    "question": question,
                    "hint": hint,
                    "answer": answer,
                    "choices": choices,
                    "meta": {
                        "family": family,
                        "format": "open" if is_open else "mc",
                        "colour": colour,
                        "shape": shape,
                        "texture": texture,
                    },
                }
            )
        out[split] = rows
    return out


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    """The one file every split is rendered from: the generator spec."""
    return [Path(raw_dir) / SPEC_FILE]


def hf_configs(raw_dir: Path, cfg: dict) -> None:
    """Generated, not downloaded: no Hugging Face configs."""
    return None


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    spec = read_spec(Path(raw_dir))
    splits = generate(json.dumps(spec, sort_keys=True))
    if split not in splits:
        raise VovnetError(f"{raw_dir / SPEC_FILE}: no split {split!r} in generator sizes (have {', '.join(splits)})")
    for i, item in enumerate(splits[split]):
        yield Row(
            index=i, key=item["key"], group=item["key"], fields=item, images=[ImageRef("png", "bytes", item["png"])]
        )


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    label = f["choices"].index(f["answer"]) if f["choices"] else None
    return make_record(
        dataset,
        split,
        row,
        question=f["question"],
        hint=f["hint"],
        choices=f["choices"],
        label=label,
        text=f["answer"],
        images=images,
        meta=f["meta"],
    )
