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

from vovnet.data import hf_source, split_files
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.records import LETTERS, Reject, Row, kind_of, letter_to_label, make_record, source_key, text_field

REQUIRED = ("index", "question", "image", "answer")
OPTIONS_MARK = "Options:"
META_FIELDS = ("source", "split", "image_path")


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
        key = source_key(cells, "index")
    except Reject as rej:
        key, cells["_error"] = f"row{i}", (rej.field, rej.reason)
    return Row(index=i, key=key, group=key, fields=cells, images=[hf_image_ref("image", cells.get("image"), snapshot)])


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
