"""Atomic, deterministic file output: nothing partial is ever left where DVC would take it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from vovnet import VovnetError


def dumps(obj: Any) -> str:
    """Canonical JSON: sorted keys, UTF-8, no spaces beyond separators (byte-stable across runs)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _check_writable(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VovnetError(f"cannot create output folder {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise VovnetError(f"output folder {parent} is not writable")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `path` (file or directory) in one rename."""
    path = Path(path)
    _check_writable(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise VovnetError(f"internal: nothing was written for {path}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_lines(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Canonical JSONL, written in place (for files inside a folder that is itself written atomically)."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
            n += 1
    return n


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    with atomic_path(path) as tmp:
        return write_lines(tmp, rows)


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    path = Path(path)
    if not path.exists():
        raise VovnetError(f"{path}: file not found (run the stage that writes it: `dvc repro`)")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise VovnetError(f"{path}: line {lineno}: invalid JSON ({exc.msg})") from None


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts as {"a.b": value}, the way DVC names metrics and params."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
