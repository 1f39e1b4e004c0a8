"""MMMU (MMMU/MMMU): 30 per-subject configs; `options` is a Python-literal list in a string;
`<image N>` placeholders in the question refer to the columns image_1 .. image_7."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.records import Reject, Row, kind_of, letter_to_label, make_record, source_key, text_field

MAX_IMAGES = 7
PLACEHOLDER = re.compile(r"<image (\d+)>")
REQUIRED = ("id", "question", "options", "answer")


def subjects(raw_dir: Path, subset) -> list[str | None]:
    """The subject configs `subset` names (a name, a list, or `all`), from the README's configs."""
    configs = hf_source.card_configs(raw_dir)
    if configs is None:
        if subset in (None, "all"):
            return [None]  # a folder without configs: one default config
        return sorted([subset] if isinstance(subset, str) else list(subset))
    if subset is None:
        subset = "all"
    return sorted(c.name for c in hf_source.select_configs(raw_dir, configs, subset))


def hf_configs(raw_dir: Path, cfg: dict) -> list[str | None]:
    return subjects(raw_dir, cfg["subset"])


def _subject_files(raw_dir: Path, cfg: dict, split: str) -> list[tuple[str | None, list[Path]]]:
    requested = list(cfg["splits"])
    return [(s, hf_source.split_files_of(raw_dir, s, split, requested)) for s in subjects(raw_dir, cfg["subset"])]


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    return [f for _, files in _subject_files(raw_dir, cfg, split) for f in files]


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    i = 0
    for subject, files in _subject_files(raw_dir, cfg, split):
        for cells in hf_source.iter_rows(files, REQUIRED, f"subject {subject}, split {split}"):
            yield row_from_cells(cells, i, raw_dir, subject)
            i += 1


def row_from_cells(cells: dict, i: int, snapshot: Path, subject: str | None) -> Row:
    cells["_subject"] = subject
    try:
        key = source_key(cells, "id")
    except Reject as rej:
        key, cells["_error"] = f"row{i}", (rej.field, rej.reason)
    wanted = []
    for name in ("question", "options"):
        text = cells.get(name)
        for n in PLACEHOLDER.findall(text if isinstance(text, str) else ""):
            if int(n) not in wanted:
                wanted.append(int(n))
    if not wanted and cells.get("image_1") is not None:
        wanted = [1]  # no placeholder: image_1 still belongs to the question
    images = [hf_image_ref(f"image_{n}", cells.get(f"image_{n}"), snapshot) for n in wanted]
    return Row(index=i, key=key, group=key, fields=cells, images=images)


def parse_options(text) -> list[str]:
    if isinstance(text, list):
        value = text
    elif isinstance(text, str):
        try:
            value = ast.literal_eval(text)  # literal only: an expression is rejected, never evaluated
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise Reject("options", "not a literal list") from None
    else:
        raise Reject("options", f"expected a list written as text, got {kind_of(text)}")
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        raise Reject("options", "not a literal list of strings")
    return [str(v).strip() for v in value]


def _open_answers(answer: str) -> list[str]:
    """An open question's reference answers: a plain string, or a literal list of them."""
    if answer.startswith("["):
        try:
            value = ast.literal_eval(answer)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return [answer]  # an answer that merely starts with '[' is a plain string
        if not isinstance(value, list) or not value:
            return [answer]
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise Reject("answer", "a literal list of answers must hold only text or numbers")
        return [str(v).strip() for v in value]
    return [answer]


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    for ref in row.images:
        if ref.kind == "bytes" and ref.value is None:
            raise Reject(ref.field, f"question refers to {ref.field.replace('_', ' ')} but it is empty")
    qtype = text_field(f, "question_type") or "multiple-choice"
    if qtype not in ("multiple-choice", "open"):
        raise Reject("question_type", f"expected 'multiple-choice' or 'open', got {qtype[:40]!r}")
    options = parse_options(f.get("options"))
    answer = text_field(f, "answer")
    if answer == "?":  # hidden test answers
        answer = None
    if answer is None and "test" not in split.lower():
        raise Reject("answer", f"empty answer in the labelled split {split!r}")
    meta = {
        "subject": f["_subject"],
        "subfield": text_field(f, "subfield"),
        "img_type": text_field(f, "img_type"),
        "topic_difficulty": text_field(f, "topic_difficulty"),
        "question_type": qtype,
    }
    question = text_field(f, "question")
    if qtype == "multiple-choice":
        if not options:
            raise Reject("options", "multiple-choice question without options")
        label = letter_to_label(answer, len(options)) if answer is not None else None
        return make_record(
            dataset, split, row, question=question, choices=options, label=label, images=images, meta=meta
        )
    all_answers = _open_answers(answer) if answer is not None else []
    return make_record(
        dataset,
        split,
        row,
        question=question,
        choices=None,
        text=all_answers[0] if all_answers else None,
        all_answers=all_answers,
        images=images,
        meta=meta,
    )
