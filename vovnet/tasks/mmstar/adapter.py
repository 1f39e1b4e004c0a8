"""MMStar (Lin-Chen/MMStar): one parquet, split `val`, 1,500 rows with the columns `index`, `question`,
`image`, `answer`, `category`, `l2_category`, `meta_info` (`source`, `split`, `image_path`).

The options are not columns: the `question` cell ends with them inline,
"<stem>\\nOptions: A: <text>, B: <text>, C: <text>, D: <text>". The record's question is the stem and its
choices the option texts, so that prompts render the options as for every other multiple-choice set.
A question without such a list, or an answer outside its option letters, is a counted reject.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

from vovnet.data import hub_parquet
from vovnet.data.hub_parquet import hf_configs, source_files  # noqa: F401  (the Adapter interface: same layout)
from vovnet.data.records import LETTERS, Reject, Row, kind_of, letter_to_label, make_record, text_field

REQUIRED = ("index", "question", "image", "answer")
OPTIONS_MARK = "Options:"
META_FIELDS = ("source", "split", "image_path")


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    return hub_parquet.keyed_rows(raw_dir, cfg, split, REQUIRED, "index")


def row_from_cells(cells: dict, i: int, snapshot: Path) -> Row:
    return hub_parquet.keyed_row(cells, i, snapshot, "index")


def split_options(question: str) -> tuple[str, list[str]]:
    """(stem, option texts) of a question that ends with "Options: A: ..., B: ...": letters in order from A,
    each introduced by "X: " after a comma or a line break (the first right after the mark)."""
    stem, mark, tail = question.rpartition(OPTIONS_MARK)
    tail = tail.strip()
    if not mark or not tail.startswith("A:"):
        raise Reject("question", f"no '{OPTIONS_MARK} A: ..., B: ...' list at the end of the question")
    starts = [(0, len("A:"))]
    for letter in LETTERS[1:]:
        m = re.compile(rf"(?:,|\n)\s*{letter}:\s").search(tail, starts[-1][1])
        if m is None:
            break
        starts.append((m.start(), m.end()))
    ends = [s for s, _ in starts[1:]] + [len(tail)]
    options = [tail[body:end].strip() for (_, body), end in zip(starts, ends)]
    if len(options) < 2 or not all(options):
        raise Reject("question", f"the '{OPTIONS_MARK}' list needs at least two non-empty options A, B, ...")
    if not stem.strip():
        raise Reject("question", "empty question before the options")
    return stem.strip(), options


def meta_info(value) -> dict:
    """`meta_info`: a struct {source, split, image_path} (Lin-Chen/MMStar), or the same as JSON text."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise Reject("meta_info", "text that is not a JSON object") from None
    if not isinstance(value, dict):
        raise Reject("meta_info", f"expected an object {{source, split, image_path}}, got {kind_of(value)}")
    return {k: text_field(value, k) for k in META_FIELDS}


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    if row.images[0].kind == "bytes" and row.images[0].value is None:
        raise Reject("image", "missing image")
    stem, options = split_options(text_field(f, "question", required=True))
    answer = text_field(f, "answer", required=True)
    label = letter_to_label(answer, len(options))
    info = meta_info(f.get("meta_info"))
    meta = {
        "category": text_field(f, "category"),
        "l2_category": text_field(f, "l2_category"),
        "index": int(row.key) if row.key.isdigit() else row.key,
        "source": info.get("source"),
        "source_split": info.get("split"),
        "image_path": info.get("image_path"),
    }
    return make_record(dataset, split, row, question=stem, choices=options, label=label, images=images, meta=meta)
