"""MMMU (MMMU/MMMU): 30 per-subject configs; `options` is a Python-literal list in a string;
`<image N>` placeholders in the question refer to the columns image_1 .. image_7."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source
from vovnet.data.records import ImageRef, Reject, Row, clean_text, letter_to_label, make_record

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
            cells["_subject"] = subject
            text = f"{cells.get('question') or ''} {cells.get('options') or ''}"
            wanted = []
            for n in PLACEHOLDER.findall(text):
                if int(n) not in wanted:
                    wanted.append(int(n))
            if not wanted and cells.get("image_1") is not None:
                wanted = [1]
            images = [ImageRef(f"image_{n}", "bytes", hf_source.image_bytes(cells.get(f"image_{n}"))) for n in wanted]
            key = str(cells.get("id"))
            yield Row(index=i, key=key, group=key, fields=cells, images=images)
            i += 1


def parse_options(text) -> list[str]:
    if isinstance(text, list):
        value = text
    else:
        try:
            value = ast.literal_eval(str(text))  # literal only: an expression is rejected, never evaluated
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise Reject("options", "not a literal list") from None
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise Reject("options", "not a literal list of strings")
    return [str(v).strip() for v in value]


def _open_answers(answer: str) -> list[str]:
    if answer.startswith("["):
        try:
            value = ast.literal_eval(answer)
            if isinstance(value, list) and value:
                return [str(v) for v in value]
        except (ValueError, SyntaxError):
            pass  # an answer that merely starts with '[' is a plain string
    return [answer]


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    for ref in row.images:
        if ref.value is None:
            raise Reject(ref.field, f"question refers to {ref.field.replace('_', ' ')} but it is empty")
    qtype = clean_text(f.get("question_type")) or "multiple-choice"
    options = parse_options(f.get("options"))
    answer = clean_text(f.get("answer"))
    if answer == "?":  # hidden test answers
        answer = None
    meta = {"subject": f["_subject"], "subfield": clean_text(f.get("subfield")), "img_type": clean_text(f.get("img_type")),
            "topic_difficulty": clean_text(f.get("topic_difficulty")), "question_type": qtype}
    question = clean_text(f.get("question"))
    if qtype == "multiple-choice":
        if not options:
            raise Reject("options", "multiple-choice question without options")
        label = letter_to_label(answer, len(options)) if answer is not None else None
        return make_record(dataset, split, row, question=question, choices=options, label=label,
                           images=images, meta=meta)
    all_answers = _open_answers(answer) if answer is not None else []
    return make_record(dataset, split, row, question=question, choices=None, text=all_answers[0] if all_answers else None,
                       all_answers=all_answers, images=images, meta=meta)
