"""POPE (lmms-lab/POPE): config `default`, split `test` (data/test-0000[0-2]-of-00003.parquet, 9,000 rows);
columns `id`, `question_id`, `question`, `answer` (yes/no), `image_source` (the COCO val2014 image),
`image`, `category` (adversarial, popular or random). The `Full` config holds the same rows with one split
per category (Full/adversarial-*, ...). A gold answer other than yes/no is a counted reject."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source, split_files
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.records import Reject, Row, make_record, source_key, text_field

REQUIRED = ("question_id", "question", "answer", "image")
GOLD = ("yes", "no")


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    explicit = split_files.explicit_file(raw_dir, cfg, split)
    if explicit is not None:
        return [explicit]
    return hf_source.split_files_of(raw_dir, cfg["subset"], split, list(cfg["splits"]))


def hf_configs(raw_dir: Path, cfg: dict) -> list[str | None]:
    return [cfg["subset"]]


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    files = source_files(raw_dir, cfg, split)
    for i, cells in enumerate(hf_source.iter_rows(files, REQUIRED, f"split {split}")):
        yield row_from_cells(cells, i, raw_dir)


def row_from_cells(cells: dict, i: int, snapshot: Path) -> Row:
    try:
        key = source_key(cells, "question_id")
    except Reject as rej:
        key, cells["_error"] = f"row{i}", (rej.field, rej.reason)
    return Row(index=i, key=key, group=key, fields=cells, images=[hf_image_ref("image", cells.get("image"), snapshot)])


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    if row.images[0].kind == "bytes" and row.images[0].value is None:
        raise Reject("image", "missing image")
    answer = (text_field(f, "answer", required=True)).lower()
    if answer not in GOLD:
        raise Reject("answer", f"expected yes or no, got {answer[:40]!r}")
    meta = {
        "category": text_field(f, "category"),
        "image_source": text_field(f, "image_source"),
        "pope_id": text_field(f, "id"),
    }
    return make_record(dataset, split, row, question=text_field(f, "question"), text=answer, images=images, meta=meta)
