"""MMBench: VLMEvalKit TSV (base64 images, circular copies) or the HF layouts (lmms-lab/MMBench_EN, lmms-lab/MMBench)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet import VovnetError
from vovnet.data import hf_source
from vovnet.data.records import LETTERS, ImageRef, Reject, Row, clean_text, letter_to_label, make_record
from vovnet.data.tsv import TsvRowError, read_tsv

CIRCULAR_STRIDE = 1_000_000  # circular copies: index = original + k * 1e6
REF_MAX_CHARS = 64           # an image cell this short is the index of the row whose image it reuses


def find_tsv(raw_dir: Path, split: str, lang: str) -> Path | None:
    tsvs = sorted(raw_dir.rglob("*.tsv"))
    if not tsvs:
        return None
    wanted = f"_{split}_{lang}.tsv".lower()
    named = [p for p in tsvs if p.name.lower().endswith(wanted)]
    if named:
        return named[0]
    if len(tsvs) == 1:
        return tsvs[0]
    raise VovnetError(f"{raw_dir}: no TSV for split {split!r} lang {lang!r} (expected *{wanted}; found "
                      f"{', '.join(p.name for p in tsvs)})")


def _has_answers(split: str) -> bool:
    return "test" not in split.lower()


def _rows_from_cells(cells: dict, i: int) -> Row:
    raw_index = clean_text(cells.get("index"))
    if raw_index is None:
        raise TsvRowError(i, "index: empty")
    try:
        index = int(float(raw_index))
    except ValueError:
        raise TsvRowError(i, f"index: not a number ({raw_index[:40]!r})") from None
    image = cells.get("image")
    images = []
    if isinstance(image, str) and clean_text(image):
        kind = "ref" if len(image.strip()) <= REF_MAX_CHARS else "b64"
        value = str(int(float(image.strip()))) if kind == "ref" and _is_number(image) else image
        images.append(ImageRef("image", kind, value))
    elif isinstance(image, (dict, bytes)):
        images.append(ImageRef("image", "bytes", hf_source.image_bytes(image)))
    return Row(index=i, key=str(index), group=str(index % CIRCULAR_STRIDE), fields=cells, images=images)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row | TsvRowError]:
    tsv = find_tsv(raw_dir, split, cfg["lang"])
    if tsv is not None:
        required = ("index", "question", "A", "image") + (("answer",) if _has_answers(split) else ())
        for i, cells in read_tsv(tsv, required):
            if isinstance(cells, TsvRowError):
                yield cells
                continue
            try:
                yield _rows_from_cells(cells, i)
            except TsvRowError as err:
                yield err
        return
    # lmms-lab/MMBench has configs en/cn; lmms-lab/MMBench_EN has none
    subset = cfg["subset"] or (cfg["lang"] if cfg["lang"] in hf_source.config_names(raw_dir) else None)
    rows = hf_source.iter_split(raw_dir, subset, split, cfg["streaming"], image_columns=("image",),
                                required=("index", "question", "A", "image"))
    for i, cells in enumerate(rows):
        cells = dict(cells)
        if "L2-category" in cells:  # lmms-lab/MMBench spells it with a capital L
            cells["l2-category"] = cells.pop("L2-category")
        try:
            yield _rows_from_cells({k: v for k, v in cells.items()}, i)
        except TsvRowError as err:
            yield err


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    choices = []
    for letter in LETTERS:
        if letter not in f:
            break
        value = clean_text(f.get(letter))
        if value is None:
            break  # fewer options: trailing cells are empty
        choices.append(value)
    if not choices:
        raise Reject("A", "empty options row")
    answer = clean_text(f.get("answer")) if _has_answers(split) else None
    if _has_answers(split) and answer is None:
        raise Reject("answer", "empty answer")
    label = letter_to_label(answer, len(choices)) if answer is not None else None
    index = int(row.key)
    meta = {
        "category": clean_text(f.get("category")),
        "l2_category": clean_text(f.get("l2-category")),
        "source": clean_text(f.get("source")),
        "circular_group": index % 1_000_000,
        "circular_rotation": index // 1_000_000,
        "index": index,
    }
    return make_record(dataset, split, row, question=clean_text(f.get("question")), hint=clean_text(f.get("hint")),
                       choices=choices, label=label, images=images, meta=meta)
