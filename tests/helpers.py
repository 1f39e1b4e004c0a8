"""What several test files share: the repository root, MMBench-layout rows and TSVs, small JPEGs and a
photo-like circular TSV. Fixtures live in conftest.py, which re-exports these for the files that
import them from there; a test file imports them from here (`from helpers import ROOT`: pytest puts
tests/ on sys.path, as for conftest)."""

import base64
import csv
import io
import random
from pathlib import Path

from vovnet.data.mmbench_layout import TSV_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 89_478_485  # PIL's default pixel limit, the schema's default max_image_pixels


def jpeg_bytes(colour=(200, 30, 30), size=(32, 32), seed=0) -> bytes:
    from PIL import Image

    img = Image.new("RGB", size, colour)
    px = img.load()
    rng = random.Random(seed)
    for _ in range(50):
        px[rng.randrange(size[0]), rng.randrange(size[1])] = (rng.randrange(256), 0, 0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def photo_jpeg(seed: int, size=(320, 240)) -> bytes:
    """A noisy gradient: a JPEG that compresses like a photo (~30 KB), not like flat colour."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([(x * rng.uniform(0.3, 1)) % 256, (y * rng.uniform(0.3, 1)) % 256, (x + y) % 256], -1)
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + rng.normal(0, 28, base.shape), 0, 255).astype("uint8")).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def circular_mmbench_rows(n: int) -> list[dict]:
    """n MMBench rows of photo-like images: each original followed by its 3 circular copies (index +
    k * 1e6, options rotated, the image cell naming the original's index), as VLMEvalKit ships them."""
    rows, q, opts = [], 0, ["alpha", "beta", "gamma", "delta"]
    while len(rows) < n:
        q += 1
        image = b64(photo_jpeg(q))
        for k in range(min(4, n - len(rows))):
            rot = opts[k:] + opts[:k]
            rows.append(
                mmb_row(
                    q + k * 1_000_000, f"Question {q}?", "ABCD"[rot.index("alpha")], image if k == 0 else str(q), rot
                )
            )
    return rows


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


MMB_COLUMNS = list(TSV_COLUMNS)  # VLMEvalKit's MMBench TSV header, in its order


def mmb_row(index, question="Q?", answer="A", image=None, options=("x", "y", "z", "w"), **extra):
    row = {
        "index": index,
        "question": question,
        "hint": "",
        "answer": answer,
        "category": "cat",
        "source": "s",
        "l2-category": "l2",
        "comment": "",
        "split": "dev",
        "image": image if image is not None else b64(jpeg_bytes(seed=index)),
    }
    for letter, opt in zip("ABCD", list(options) + [""] * 4):
        row[letter] = opt
    row.update(extra)
    return row


def write_tsv(path: Path, rows, columns=MMB_COLUMNS, newline="\n", encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator=newline)
        w.writerow(columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])
    return path
