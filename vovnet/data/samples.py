"""Builds the small offline sample sources in data/samples/, each in its dataset's real raw layout.

The questions are synthetic (coloured images, drawn shapes, rendered words) and labelled as such; some
need the image and some do not, so a value-of-vision policy has something to learn even here.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (200, 30, 30), "green": (30, 160, 40), "blue": (30, 60, 200), "yellow": (230, 210, 40)}
SHAPES = ["circle", "square", "triangle"]
FACTS = [
    ("Which of these is a fruit?", ["apple", "car", "chair", "shoe"]),
    ("Which animal can fly?", ["eagle", "cow", "horse", "pig"]),
    ("Which of these is a planet?", ["Mars", "Paris", "Nile", "Everest"]),
    ("Which number is even?", ["8", "3", "5", "7"]),
    ("Which is a primary colour?", ["blue", "pink", "brown", "grey"]),
    ("Which of these is frozen water?", ["ice", "sand", "wood", "glass"]),
]
MMBENCH_COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
                   "l2-category", "comment", "split"]


def _jpeg(img: Image.Image, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
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


def mmbench_rows(rng: random.Random, n_colour: int = 10, n_shape: int = 6) -> list[dict]:
    """Original questions plus circular copies (index + k*1e6) whose image cell refers to the original."""
    items = []
    for i in range(n_colour):
        colour = list(COLOURS)[i % 4]
        opts = list(COLOURS)
        rng.shuffle(opts)
        items.append(("What is the main colour of this image?", opts, opts.index(colour),
                      _jpeg(colour_image(rng, colour)), "colour_recognition", "perception"))
    for i in range(n_shape):
        shape = SHAPES[i % 3]
        opts = list(SHAPES)
        rng.shuffle(opts)
        items.append(("Which shape is drawn in the image?", opts, opts.index(shape), _png(shape_image(shape, rng)),
                      "shape_recognition", "perception"))
    for q, opts in FACTS:
        shuffled = list(opts)
        rng.shuffle(shuffled)
        items.append((q, shuffled, shuffled.index(opts[0]), _jpeg(colour_image(rng, rng.choice(list(COLOURS)))),
                      "commonsense", "reasoning"))
    rows = []
    for i, (q, opts, ans, img, cat, l2) in enumerate(items):
        base = i + 1
        for k in range(len(opts)):  # CircularEval: rotation k shifts options left by k
            rot = opts[k:] + opts[:k]
            row = {"index": base + k * 1_000_000, "question": q, "hint": "Synthetic sample item." if i % 5 == 0 else "",
                   "answer": "ABCD"[rot.index(opts[ans])], "category": cat, "source": "vovnet-synthetic",
                   "l2-category": l2, "comment": "", "split": "dev",
                   "image": base64.b64encode(img).decode() if k == 0 else str(base)}
            for j, letter in enumerate("ABCD"):
                row[letter] = rot[j] if j < len(rot) else ""
            rows.append(row)
    return rows


def write_tsv(path: Path, rows: list[dict], columns=MMBENCH_COLUMNS) -> None:
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


def make_mmmu(out: Path, rng: random.Random) -> None:
    import datasets

    img_feats = {f"image_{k}": datasets.Image() for k in range(1, 8)}
    feats = datasets.Features({"id": datasets.Value("string"), "question": datasets.Value("string"),
                               "options": datasets.Value("string"), "explanation": datasets.Value("string"),
                               **img_feats, "img_type": datasets.Value("string"), "answer": datasets.Value("string"),
                               "topic_difficulty": datasets.Value("string"), "question_type": datasets.Value("string"),
                               "subfield": datasets.Value("string")})
    blank = {f"image_{k}": None for k in range(1, 8)}
    subjects = {"Art": [], "Math": []}
    for i, colour in enumerate(["red", "blue", "green", "yellow"]):
        opts = list(COLOURS)
        subjects["Art"].append({**blank, "id": f"validation_Art_{i + 1}",
                                "question": "<image 1> Which colour dominates this painting?", "options": str(opts),
                                "image_1": {"bytes": _jpeg(colour_image(rng, colour)), "path": None},
                                "answer": "ABCD"[opts.index(colour)], "question_type": "multiple-choice",
                                "img_type": "['Paintings']", "subfield": "Colour", "topic_difficulty": "Easy",
                                "explanation": ""})
    for i, (a, b) in enumerate([(2, 3), (12, 30), (7, 8)]):
        subjects["Math"].append({**blank, "id": f"validation_Math_{i + 1}", "question": f"What is {a} + {b}?",
                                 "options": "[]", "answer": str(a + b), "question_type": "open", "img_type": "[]",
                                 "subfield": "Arithmetic", "topic_difficulty": "Easy", "explanation": ""})
    subjects["Math"].append({**blank, "id": "validation_Math_4",
                             "question": "<image 1> and <image 2>: which image shows a circle?",
                             "options": "['The first', 'The second']", "answer": "B",
                             "image_1": {"bytes": _png(shape_image("square", rng)), "path": None},
                             "image_2": {"bytes": _png(shape_image("circle", rng)), "path": None},
                             "question_type": "multiple-choice", "img_type": "['Diagrams']", "subfield": "Geometry",
                             "topic_difficulty": "Easy", "explanation": ""})
    configs = []
    for subject, rows in subjects.items():
        write_hf_parquet(out, rows, feats, "validation", subject)
        configs.append(f"- config_name: {subject}\n  data_files:\n  - split: validation\n    path: {subject}/validation-*")
    (out / "README.md").write_text("---\nconfigs:\n" + "\n".join(configs) + "\n---\n# MMMU-shaped synthetic sample\n")


def make_textvqa(out: Path) -> None:
    import datasets

    feats = datasets.Features({"question_id": datasets.Value("int64"), "question": datasets.Value("string"),
                               "image": datasets.Image(), "answers": datasets.Sequence(datasets.Value("string")),
                               "image_id": datasets.Value("string"),
                               "ocr_tokens": datasets.Sequence(datasets.Value("string"))})
    words = ["STOP", "CAFE", "42", "OPEN", "EXIT", "SALE", "7", "BUS"]
    rows = []
    for i, w in enumerate(words):
        answers = [w.lower()] * 7 + [f"{w.lower()} sign"] * 2 + ["unanswerable"]
        rows.append({"question_id": 34600 + i, "question": "What is written in the image?",
                     "image": {"bytes": _png(word_image(w)), "path": None}, "answers": answers,
                     "image_id": f"{i:016x}", "ocr_tokens": [w.lower()]})
    write_hf_parquet(out, rows, feats, "validation")


def make_llava(out: Path, rng: random.Random) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(8):
        colour = list(COLOURS)[i % 4]
        name = f"{100000 + i:012d}.jpg"
        (out / "images" / name).write_bytes(_jpeg(colour_image(rng, colour)))
        items.append({"id": f"{100000 + i:012d}", "image": name, "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is this image?"},
            {"from": "gpt", "value": f"The image is {colour}."}]})
    (out / "llava_sample.json").write_text(json.dumps(items, indent=1) + "\n")


def make_samples(out: str | Path = "data/samples", seed: int = 0) -> None:
    out = Path(out)
    rng = random.Random(seed)
    for sub in ("mmbench", "mmbench_lite", "mmmu", "textvqa", "llava"):
        shutil.rmtree(out / sub, ignore_errors=True)
    rows = mmbench_rows(rng)
    write_tsv(out / "mmbench" / "MMBench_DEV_EN.tsv", rows)
    test_rows = [{**r, "index": r["index"], "split": "test"} for r in mmbench_rows(random.Random(seed + 1), 2, 2)]
    write_tsv(out / "mmbench" / "MMBench_TEST_EN.tsv", test_rows, [c for c in MMBENCH_COLUMNS if c != "answer"])
    # MMBench-Lite: a subset of MMBench dev (non-circular originals), as in the real Lite set.
    originals = {r["index"]: r for r in rows if r["index"] < 1_000_000}
    write_tsv(out / "mmbench_lite" / "mmbench_lite.tsv", [originals[i] for i in sorted(originals) if i % 2 == 0])
    make_mmmu(out / "mmmu", rng)
    make_textvqa(out / "textvqa")
    make_llava(out / "llava", rng)
