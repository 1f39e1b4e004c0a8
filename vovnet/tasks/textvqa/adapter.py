"""TextVQA (lmms-lab/textvqa): question_id, question, image, answers (10 human answers), image_id, ocr_tokens."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from vovnet.data import hub_parquet
from vovnet.data.hub_parquet import hf_configs, source_files  # noqa: F401  (the Adapter interface: same layout)
from vovnet.data.records import Reject, Row, kind_of, make_record, text_field

N_ANSWERS = 10
REQUIRED = ("question_id", "question", "image", "answers")


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    return hub_parquet.keyed_rows(raw_dir, cfg, split, REQUIRED, "question_id")


def row_from_cells(cells: dict, i: int, snapshot: Path) -> Row:
    return hub_parquet.keyed_row(cells, i, snapshot, "question_id")


def _answers(value, split: str) -> list[str]:
    """The human answers: a list of text; empty only where the split has no labels (test)."""
    if value is None and "test" in split:
        return []
    if not isinstance(value, (list, tuple)):
        raise Reject("answers", f"expected a list of {N_ANSWERS} answers, got {kind_of(value)}")
    answers = []
    for k, a in enumerate(value):
        if not isinstance(a, str):
            raise Reject(f"answers[{k}]", f"expected text, got {kind_of(a)}")
        answers.append(a.strip())
    if answers or "test" not in split:
        if len(answers) != N_ANSWERS:
            raise Reject("answers", f"expected {N_ANSWERS} human answers, got {len(answers)}")
        if not any(answers):  # an empty reply would match them all
            raise Reject("answers", f"all {N_ANSWERS} human answers are empty")
    return answers


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    if row.images[0].kind == "bytes" and row.images[0].value is None:
        raise Reject("image", "missing image")
    answers = _answers(f.get("answers"), split)
    text = None
    if answers:
        counts = Counter(answers)
        text = max(answers, key=lambda a: (counts[a], -answers.index(a)))  # majority, first on ties
    tokens = f.get("ocr_tokens")
    if tokens is not None and not (isinstance(tokens, (list, tuple)) and all(isinstance(t, str) for t in tokens)):
        raise Reject("ocr_tokens", f"expected a list of text, got {kind_of(tokens)}")
    meta = {"image_id": text_field(f, "image_id"), "ocr_tokens": list(tokens or [])}
    return make_record(
        dataset,
        split,
        row,
        question=text_field(f, "question"),
        text=text,
        all_answers=answers,
        images=images,
        meta=meta,
    )
