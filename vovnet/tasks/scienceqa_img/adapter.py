"""ScienceQA-IMG (lmms-lab/ScienceQA, config ScienceQA-IMG, as lmms-eval's `scienceqa_img` reads it): files
ScienceQA-IMG/<split>-*.parquet, test 2,017 rows; columns `image`, `question`, `choices` (a list of text),
`answer` (the option's 0-based index, int8), `hint` (the context), `task`, `grade`, `subject`, `topic`,
`category`, `skill`, `lecture`, `solution`. The rows have no id column: the key is the row's position in
the split (`row<N>`), and the record id hashes the content. A question without its image, options that are
not a list of text, or an answer outside the options is a counted reject."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet.data import hub_parquet
from vovnet.data.hub_parquet import hf_configs, source_files  # noqa: F401  (the Adapter interface: same layout)
from vovnet.data.records import Reject, Row, kind_of, make_record, text_field

REQUIRED = ("image", "question", "choices", "answer")
META = ("subject", "category", "topic", "skill", "grade", "task")


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    return hub_parquet.keyed_rows(raw_dir, cfg, split, REQUIRED, None, f"config {cfg['subset']}, split {split}")


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
