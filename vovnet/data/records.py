"""The normalized record schema and the raw-row type adapters yield."""

from __future__ import annotations

import hashlib
import math
import string
from dataclasses import dataclass, field
from typing import Any

from vovnet.io_utils import dumps

LETTERS = string.ascii_uppercase


class Reject(ValueError):
    """A row that cannot become a record: counted and written to rejects.jsonl with this reason."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass
class ImageRef:
    """Where a row's image comes from: 'b64' text, raw 'bytes', a 'path', or a 'ref' to another row's key."""

    field: str
    kind: str
    value: Any


@dataclass
class Row:
    index: int  # 0-based data-row number in the source (reported in errors/rejects)
    key: str  # the source's own id; duplicates are rejected
    group: str  # sampling unit (MMBench circular copies share one)
    fields: dict
    images: list[ImageRef] = field(default_factory=list)


def record_id(dataset: str, split: str, key: str, question: str, hint, choices, image_shas) -> str:
    """Stable id from content; the source key keeps distinct source rows apart."""
    payload = dumps([dataset, split, key, question, hint, choices, list(image_shas)])
    return f"{dataset}-{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"


def clean_text(value: Any) -> str | None:
    """Source cells: NaN/None/empty -> None, else the stripped string (numbers as written)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    text = str(value).strip()
    if text == "" or text.lower() == "nan":
        return None
    return text


def kind_of(value: Any) -> str:
    """A value's type in the source's own words, for reject reasons (never a repr)."""
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        tuple: "a list",
        dict: "an object",
        bytes: "bytes",
        bytearray: "bytes",
    }.get(type(value), type(value).__name__)


def text_field(fields: dict, name: str, *, required: bool = False) -> str | None:
    """A text cell: str, or a number a table wrote where text belongs. Anything else is a Reject."""
    value = fields.get(name)
    if isinstance(value, bool) or not (value is None or isinstance(value, (str, int, float))):
        raise Reject(name, f"expected text, got {kind_of(value)}")
    text = clean_text(value)
    if text is None and required:
        raise Reject(name, "empty")
    return text


def source_key(fields: dict, name: str) -> str:
    """A row's id cell as a string: text or an integer; anything else (null, float, list) is a Reject."""
    value = fields.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise Reject(
        name,
        "empty" if value is None or isinstance(value, str) else f"expected text or an integer, got {kind_of(value)}",
    )


def parse_int(text: str) -> int | None:
    """An integer cell as pandas writes it ("12" or "12.0"); None for anything else (inf, 1e400, 1.5, text)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or not value.is_integer() or abs(value) > 2**53:
        return None
    return int(value)


def make_record(
    dataset: str,
    split: str,
    row: Row,
    *,
    question: str | None,
    hint=None,
    choices=None,
    label=None,
    text=None,
    all_answers=None,
    images=(),
    meta=None,
) -> dict:
    if not question:
        raise Reject("question", "empty question")
    if choices is not None:
        if not choices:
            raise Reject("options", "no options")
        if label is not None and not 0 <= label < len(choices):
            raise Reject("answer", f"answer index {label} outside the {len(choices)} options")
        if label is not None and text is None:
            text = LETTERS[label]
    images = list(images)
    meta = dict(meta or {})
    meta.setdefault("source_index", row.index)
    meta.setdefault("source_id", row.key)
    return {
        "id": record_id(dataset, split, row.key, question, hint, choices, [im["sha256"] for im in images]),
        "dataset": dataset,
        "split": split,
        "question": question,
        "hint": hint,
        "choices": choices,
        "answer": {"label": label, "text": text, "all": list(all_answers or ([] if text is None else [text]))},
        "images": images,
        "meta": meta,
    }


def letter_to_label(letter: str | None, n_choices: int) -> int | None:
    if letter is None:
        return None
    letter = letter.strip().upper()
    if len(letter) != 1 or letter not in LETTERS[:n_choices]:
        raise Reject("answer", f"answer {letter!r} is not one of the options {LETTERS[:n_choices]}")
    return LETTERS.index(letter)
