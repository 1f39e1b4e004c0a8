"""TextVQA (lmms-lab/textvqa): question_id, question, image, answers (10 human answers), image_id, ocr_tokens."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source, split_files
from vovnet.data.records import ImageRef, Reject, Row, clean_text, make_record

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
        key = str(cells.get("question_id"))
        yield Row(index=i, key=key, group=key, fields=cells,
                  images=[ImageRef("image", "bytes", hf_source.image_bytes(cells.get("image")))])


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if row.images[0].value is None:
        raise Reject("image", "missing image")
    answers = [str(a).strip() for a in (f.get("answers") or [])]
    text = None
    if answers or "test" not in split:
        if len(answers) != N_ANSWERS:
            raise Reject("answers", f"expected {N_ANSWERS} human answers, got {len(answers)}")
        counts = Counter(answers)
        text = max(answers, key=lambda a: (counts[a], -answers.index(a)))  # majority, first on ties
    meta = {"image_id": clean_text(f.get("image_id")), "ocr_tokens": list(f.get("ocr_tokens") or [])}
    return make_record(dataset, split, row, question=clean_text(f.get("question")), text=text,
                       all_answers=answers, images=images, meta=meta)
