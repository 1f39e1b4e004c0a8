"""easy-VQA (the `easy-vqa` PyPI package): 64x64 images of one coloured shape, with open questions about
the shape, its colour, and yes/no questions about what the image contains (13 answers in all).

Raw layout (`download@` copies the package's `data/` folder): `answers.txt`, and `train/` and `test/`, each
with `questions.json` (a list of [question, answer, image id]) and `images/<id>.png`.

Three splits are drawn from it, as `datasets.<name>.generator` says:
  - `train` and `policy` from the package's train set, on disjoint images (`policy_images` of them, chosen
    by a seeded hash, go to `policy`), so stage 2 never sees an image stage 1 trained on;
  - `heldout` from the package's test set.
Each split takes `sizes[split]` questions in seeded-hash order. In each split, `stated_fraction` of them
(exactly, in another seeded order) get a hint that states the answer: vision is worth nothing there and
everything elsewhere. `meta.family` is `stated` for those and the question type otherwise (`shape`,
`colour`, `yes_no`); `meta.type` is always the question type.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from vovnet import VovnetError
from vovnet.data.image_refs import resolve_inside
from vovnet.data.records import ImageRef, Reject, Row, clean_text, kind_of, make_record

SHAPES = ("circle", "rectangle", "triangle")
SOURCE_SPLIT = {"train": "train", "policy": "train", "heldout": "test"}
SPEC_KEYS = ("policy_images", "seed", "sizes", "stated_fraction")


def _rank(seed, *parts) -> str:
    return hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).hexdigest()


def question_type(answer: str) -> str:
    if answer in ("yes", "no"):
        return "yes_no"
    return "shape" if answer in SHAPES else "colour"


def read_spec(cfg: dict, where: str) -> dict:
    spec = cfg.get("generator")
    if not isinstance(spec, dict) or sorted(spec) != sorted(SPEC_KEYS):
        got = sorted(spec) if isinstance(spec, dict) else spec
        raise VovnetError(f"{where}: generator: expected exactly the keys {', '.join(SPEC_KEYS)}, got {got}")
    sizes = spec["sizes"]
    if not isinstance(sizes, dict) or sorted(sizes) != sorted(SOURCE_SPLIT):
        raise VovnetError(f"{where}: generator.sizes: give {', '.join(SOURCE_SPLIT)} (question counts)")
    for split, n in sizes.items():
        if not _is_int(n) or n < 0:
            raise VovnetError(f"{where}: generator.sizes.{split} must be a whole number >= 0, got {n!r}")
    for key in ("policy_images", "stated_fraction", "seed"):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise VovnetError(f"{where}: generator.{key} must be a number, got {value!r}")
        if key != "seed" and not 0 <= value <= 1:
            raise VovnetError(f"{where}: generator.{key} must be in [0, 1], got {value}")
    return spec


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@lru_cache(maxsize=4)
def _questions(path: Path) -> list[tuple[str, str, int]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VovnetError(f"{path}: cannot read the questions ({exc})") from None
    if not isinstance(rows, list):
        raise VovnetError(f"{path}: expected a list of [question, answer, image id]")
    return [tuple(r) if isinstance(r, list) and len(r) == 3 else r for r in rows]


def _image_id(row) -> int | None:
    return row[2] if isinstance(row, tuple) and _is_int(row[2]) else None


def _drawn(raw_dir: Path, spec_json: str, split: str) -> dict[int, bool]:
    """{question index in the source file: stated} for the questions `split` takes."""
    spec = json.loads(spec_json)
    seed, source = spec["seed"], SOURCE_SPLIT[split]
    rows = _questions(raw_dir / source / "questions.json")
    pool = list(range(len(rows)))
    if source == "train":  # a malformed row has no image: it stays on the train side (and is rejected there)
        image = [_image_id(r) for r in rows]
        ids = sorted({i for i in image if i is not None}, key=lambda i: _rank(seed, "image", i))
        policy = set(ids[: round(len(ids) * float(spec["policy_images"]))])
        pool = [i for i in pool if (image[i] in policy) == (split == "policy")]
    want = int(spec["sizes"][split])
    if want > len(pool):
        raise VovnetError(f"{raw_dir}: generator.sizes.{split}: {want} questions asked, the split has {len(pool)}")
    taken = sorted(pool, key=lambda i: _rank(seed, split, i))[:want]
    stated = set(sorted(taken, key=lambda i: _rank(seed, "stated", split, i))[: round(want * spec["stated_fraction"])])
    return {i: i in stated for i in sorted(taken)}


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    """The split's questions file (the images are fingerprinted as the records store them)."""
    return [Path(raw_dir) / SOURCE_SPLIT[split] / "questions.json"]


def hf_configs(raw_dir: Path, cfg: dict) -> None:
    """A package's files, not a Hugging Face layout."""
    return None


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    raw_dir = Path(raw_dir)
    if split not in SOURCE_SPLIT:
        raise VovnetError(f"{raw_dir}: easy_vqa has the splits {', '.join(SOURCE_SPLIT)}, not {split!r}")
    spec = read_spec(cfg, f"datasets ({raw_dir})")
    source = SOURCE_SPLIT[split]
    rows = _questions(raw_dir / source / "questions.json")
    for i, stated in _drawn(raw_dir, json.dumps(spec, sort_keys=True), split).items():
        fields, images = {"stated": stated, "source": source}, []
        if not isinstance(rows[i], tuple):
            fields["_error"] = ("row", "expected [question, answer, image id]")
            yield Row(index=i, key=f"{source}-{i}", group=f"{source}-row-{i}", fields=fields)
            continue
        fields["question"], fields["answer"], image_id = rows[i]
        fields["image_id"] = image_id
        if not _is_int(image_id):
            fields["_error"] = ("image id", f"expected an integer, got {kind_of(image_id)}")
        else:
            try:
                path = resolve_inside(raw_dir / source / "images", f"{image_id}.png", "image", "its images folder")
                images.append(ImageRef("image", "path", path))
            except Reject as rej:
                fields["_error"] = ("image", rej.reason)
            except FileNotFoundError:
                fields["_error"] = ("image", f"{source}/images/{image_id}.png not found")
        yield Row(index=i, key=f"{source}-{i}", group=f"{source}-image-{image_id}", fields=fields, images=images)


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    for name in ("question", "answer"):
        if not isinstance(f[name], str):
            raise Reject(name, f"expected text, got {kind_of(f[name])}")
    question, answer = clean_text(f["question"]), clean_text(f["answer"])
    if question is None:
        raise Reject("question", "empty")
    if answer is None:
        raise Reject("answer", "empty")
    answer = answer.lower()
    kind = question_type(answer)
    return make_record(
        dataset,
        split,
        row,
        question=question[0].upper() + question[1:],
        hint=f"The answer is {answer}." if f["stated"] else None,
        choices=None,
        label=None,
        text=answer,
        images=images,
        meta={"family": "stated" if f["stated"] else kind, "type": kind, "format": "open", "image": f["image_id"]},
    )
