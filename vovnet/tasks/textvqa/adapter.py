"""TextVQA (lmms-lab/textvqa): question_id, question, image, answers (10 human answers), image_id, ocr_tokens."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source, split_files
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.records import Reject, Row, kind_of, make_record, source_key, text_field

N_ANSWERS = 10
REQUIRED = ("question_id", "question", "image", "answers")


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
