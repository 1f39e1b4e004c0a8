"""LLaVA-style JSON (LLaVA-Instruct-150K layout): [{id, image: "name.jpg", conversations: [...]}, ...].

Images are bare names resolved under `image_root` / VOVNET_IMAGE_ROOTS / VOVNET_IMAGE_ROOT; a name that
would leave its root (absolute, `..`, or a symlink pointing outside) is rejected and never read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from vovnet import VovnetError
from vovnet.config import image_roots
from vovnet.data import split_files
from vovnet.data.fingerprint import RECORD
from vovnet.data.image_refs import resolve_in_roots
from vovnet.data.records import ImageRef, Reject, Row, clean_text, kind_of, make_record


def find_json(raw_dir: Path, cfg: dict, split: str) -> Path:
    """The JSON that serves `split`: `splits: {split: file}`, or the one file named for it."""
    explicit = split_files.explicit_file(raw_dir, cfg, split)
    if explicit is not None:
        return explicit
    files = sorted(p for p in raw_dir.rglob("*.json") if p.relative_to(raw_dir).as_posix() != RECORD)
    return split_files.pick(raw_dir, files, split, list(cfg["splits"]), "LLaVA JSON")


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    return [find_json(raw_dir, cfg, split)]


def hf_configs(raw_dir: Path, cfg: dict) -> None:
    """A JSON file per split: no Hugging Face configs."""
    return None


def iter_rows(raw_dir: Path, cfg: dict, split: str) -> Iterator[Row]:
    path = find_json(raw_dir, cfg, split)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise VovnetError(f"{path}: not valid UTF-8 near byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise VovnetError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    if not isinstance(data, list):
        raise VovnetError(f"{path}: expected a JSON list of conversations, got {type(data).__name__}")
    roots, missing_is_error = image_roots(cfg), cfg["on_missing_image"] == "error"
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            yield Row(
                index=i,
                key=f"row{i}",
                group=f"row{i}",
                fields={"_error": ("record", f"expected an object, got {kind_of(item)}")},
            )
            continue
        key, fields = f"row{i}", dict(item)
        if "id" in item:
            if isinstance(item["id"], str) and item["id"].strip():
                key = item["id"].strip()
            elif isinstance(item["id"], int) and not isinstance(item["id"], bool):
                key = str(item["id"])
            else:
                fields["_error"] = ("id", f"expected text or an integer, got {kind_of(item['id'])}")
                yield Row(index=i, key=f"row{i}", group=f"row{i}", fields=fields)
                continue
        images = []
        if "image" in item:  # no key at all: a text-only conversation
            name = item["image"]
            if not isinstance(name, str):
                fields["_error"] = ("image", f"expected a file name, got {kind_of(name)}")
            else:
                try:
                    images.append(ImageRef("image", "path", resolve_in_roots(name, roots)))
                except Reject as rej:
                    fields["_error"] = ("image", rej.reason)
                except FileNotFoundError:
                    msg = f"image {name!r} not found under any root ({', '.join(map(str, roots)) or 'none set'})"
                    if missing_is_error:
                        raise VovnetError(
                            f"{path}: row {i} (id {key}): {msg}; set image_root or VOVNET_IMAGE_ROOTS, "
                            "or on_missing_image: reject"
                        ) from None
                    fields["_error"] = ("image", msg)
        yield Row(index=i, key=key, group=key, fields=fields, images=images)


def _turn_text(turns: list, k: int, speaker: str) -> str:
    """The text of turn k, which must come from `speaker`; a Reject naming the turn otherwise."""
    where = f"conversations[{k}]"
    if len(turns) <= k:
        raise Reject("conversations", f"needs a {speaker} turn at position {k}")
    turn = turns[k]
    if not isinstance(turn, dict):
        raise Reject(where, f"expected an object, got {kind_of(turn)}")
    if turn.get("from") != speaker:
        said = turn.get("from")
        raise Reject(
            f"{where}.from",
            f"expected {speaker!r}, got {said!r}"
            if isinstance(said, str)
            else f"expected {speaker!r}, got {kind_of(said)}",
        )
    value = turn.get("value")
    if not isinstance(value, str):
        raise Reject(f"{where}.value", f"expected text, got {kind_of(value)}")
    return value


def build(dataset: str, split: str, row: Row, images: list[dict]) -> dict:
    f = row.fields
    if "_error" in f:
        raise Reject(*f["_error"])
    turns = f.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise Reject("conversations", "missing or empty" if not turns else f"expected a list, got {kind_of(turns)}")
    # LLaVA conversations alternate human, gpt, ...; the first pair is the question and its answer.
    question = clean_text(_turn_text(turns, 0, "human").replace("<image>", ""))
    answer = clean_text(_turn_text(turns, 1, "gpt"))
    if answer is None:
        raise Reject("conversations[1].value", "empty gpt answer")
    meta = {"turns": len(turns), "image_name": f.get("image")}
    return make_record(dataset, split, row, question=question, text=answer, images=images, meta=meta)
