"""POPE (lmms-lab/POPE): config `default`, split `test` (data/test-0000[0-2]-of-00003.parquet, 9,000 rows);
columns `id`, `question_id`, `question`, `answer` (yes/no), `image_source` (the COCO val2014 image),
`image`, `category` (adversarial, popular or random). The `Full` config holds the same rows with one split
per category (Full/adversarial-*, ...). A gold answer other than yes/no is a counted reject."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet.data import hub_parquet
from vovnet.data.hub_parquet import hf_configs, source_files  # noqa: F401  (the Adapter interface: same layout)
from vovnet.data.records import Reject, Row, make_record, text_field

REQUIRED = ("question_id", "question", "answer", "image")
GOLD = ("yes", "no")


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    return hub_parquet.keyed_rows(raw_dir, cfg, split, REQUIRED, "question_id")


def row_from_cells(cells: dict, i: int, snapshot: Path) -> Row:
    return hub_parquet.keyed_row(cells, i, snapshot, "question_id")


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
