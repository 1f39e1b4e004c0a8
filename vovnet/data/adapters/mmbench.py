"""MMBench: VLMEvalKit TSV (base64 images, circular copies) or the HF layouts (lmms-lab/MMBench_EN, lmms-lab/MMBench)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet import VovnetError
from vovnet.data import hf_source
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.records import (LETTERS, ImageRef, Reject, Row, clean_text, letter_to_label, make_record, parse_int,
                                 text_field)
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


def row_from_cells(cells: dict, i: int, snapshot: Path) -> Row:
    """A Row, or a Row carrying `_error` (field, reason) when its index cell is unusable."""
    try:
        raw_index = text_field(cells, "index", required=True)
        index = parse_int(raw_index)
        if index is None or index < 0:
            raise Reject("index", f"not a non-negative integer ({raw_index[:40]!r})")
    except Reject as rej:
        return Row(index=i, key=f"row{i}", group=f"row{i}", fields={**cells, "_error": (rej.field, rej.reason)})
    image = cells.get("image")
    if isinstance(image, str):
        text = image.strip()
        if clean_text(text) is None:
            ref = ImageRef("image", "bytes", None)  # empty/nan/null: MMBench questions all have an image
        elif len(text) <= REF_MAX_CHARS:
            target = parse_int(text)
            ref = (ImageRef("image", "ref", str(target)) if target is not None and target >= 0 else
                   ImageRef("image", "invalid", f"short image cell {text[:40]!r} is neither base64 nor a row index"))
        else:
            ref = ImageRef("image", "b64", image)
    else:
        ref = hf_image_ref("image", image, snapshot)
    return Row(index=i, key=str(index), group=str(index % CIRCULAR_STRIDE), fields=cells, images=[ref])


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row | TsvRowError]:
    tsv = find_tsv(raw_dir, split, cfg["lang"])
    if tsv is not None:
        required = ("index", "question", "A", "image") + (("answer",) if _has_answers(split) else ())
        for i, cells in read_tsv(tsv, required):
            if isinstance(cells, TsvRowError):
                yield cells
                continue
            yield row_from_cells(cells, i, raw_dir)
        return
    # lmms-lab/MMBench has configs en/cn; lmms-lab/MMBench_EN has none
    subset = cfg["subset"] or (cfg["lang"] if cfg["lang"] in hf_source.config_names(raw_dir) else None)
    rows = hf_source.iter_split(raw_dir, subset, split, cfg["streaming"], image_columns=("image",),
                                required=("index", "question", "A", "image"))
    for i, cells in enumerate(rows):
        cells = dict(cells)
        if "L2-category" in cells:  # lmms-lab/MMBench spells it with a capital L
            cells["l2-category"] = cells.pop("L2-category")
        yield row_from_cells(cells, i, raw_dir)


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    if row.images and row.images[0].kind == "bytes" and row.images[0].value is None:
        raise Reject("image", "missing image (empty cell)")
    choices, gap = [], None
    for letter in LETTERS:
        if letter not in f:
            break
        value = text_field(f, letter)
        if value is None:
            gap = gap or letter  # fewer options leave the trailing cells empty
            continue
        if gap:
            raise Reject(gap, f"option {gap} is empty but option {letter} is filled")
        choices.append(value)
    if not choices:
        raise Reject("A", "empty options row")
    answer = text_field(f, "answer") if _has_answers(split) else None
    if _has_answers(split) and answer is None:
        raise Reject("answer", "empty answer")
    label = letter_to_label(answer, len(choices)) if answer is not None else None
    index = int(row.key)
    meta = {
        "category": text_field(f, "category"),
        "l2_category": text_field(f, "l2-category"),
        "source": text_field(f, "source"),
        "circular_group": index % CIRCULAR_STRIDE,
        "circular_rotation": index // CIRCULAR_STRIDE,
        "index": index,
    }
    return make_record(dataset, split, row, question=text_field(f, "question"), hint=text_field(f, "hint"),
                       choices=choices, label=label, images=images, meta=meta)
