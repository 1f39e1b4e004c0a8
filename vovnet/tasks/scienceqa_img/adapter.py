"""ScienceQA-IMG (lmms-lab/ScienceQA, config ScienceQA-IMG, as lmms-eval's `scienceqa_img` reads it): files
ScienceQA-IMG/<split>-*.parquet, test 2,017 rows; columns `image`, `question`, `choices` (a list of text),
`answer` (the option's 0-based index, int8), `hint` (the context), `task`, `grade`, `subject`, `topic`,
`category`, `skill`, `lecture`, `solution`. The rows have no id column: the key is the row's position in
the split (`row<N>`), and the record id hashes the content. A question without its image, options that are
not a list of text, or an answer outside the options is a counted reject."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source, split_files
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.records import Reject, Row, kind_of, make_record, text_field

REQUIRED = ("image", "question", "choices", "answer")
META = ("subject", "category", "topic", "skill", "grade", "task")


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    explicit = split_files.explicit_file(raw_dir, cfg, split)
    if explicit is not None:
        return [explicit]
    return hf_source.split_files_of(raw_dir, cfg["subset"], split, list(cfg["splits"]))


def hf_configs(raw_dir: Path, cfg: dict) -> list[str | None]:
    return [cfg["subset"]]


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    files = source_files(raw_dir, cfg, split)
    for i, cells in enumerate(hf_source.iter_rows(files, REQUIRED, f"config {cfg['subset']}, split {split}")):
        key = f"row{i}"
        yield Row(
            index=i, key=key, group=key, fields=cells, images=[hf_image_ref("image", cells.get("image"), raw_dir)]
        )


def _choices(value) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise Reject("choices", f"expected a list of options, got {kind_of(value)}")
    out = []
    for k, c in enumerate(value):
        if not isinstance(c, str) or not c.strip():
            raise Reject(
                f"choices[{k}]", "expected non-empty text" if isinstance(c, str) else f"expected text, got {kind_of(c)}"
            )
        out.append(c.strip())
    if len(out) < 2:
        raise Reject("choices", f"expected at least two options, got {len(out)}")
    return out


def _label(value, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Reject("answer", f"expected the option's index, got {kind_of(value)}")
    if not 0 <= value < n:
        raise Reject("answer", f"answer index {value} outside the {n} options")
    return value


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if row.images[0].kind == "bytes" and row.images[0].value is None:
        raise Reject("image", "missing image (ScienceQA-IMG holds only questions with one)")
    choices = _choices(f.get("choices"))
    label = _label(f.get("answer"), len(choices))
    meta = {k: text_field(f, k) for k in META}
    return make_record(
        dataset,
        split,
        row,
        question=text_field(f, "question"),
        hint=text_field(f, "hint"),
        choices=choices,
        label=label,
        images=images,
        meta=meta,
    )
