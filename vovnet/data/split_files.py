"""Which file serves which split: one file, one split.

A file serves the split its name says (`MMBench_DEV_EN.tsv`, `validation-00000-of-00001.parquet`,
`llava_train.json`), or the one that `splits: {<split>: <file>}` names for it. A requested split with no
such file is a one-line error naming the split and the files found; it is never filled with another
split's file. The one exception is a lone file whose name names no split while a single split is
requested: it can feed no second split, so it serves that one (LLaVA-Instruct's `llava_instruct_150k.json`
under `splits: [train]`).
"""

from __future__ import annotations

import re
from pathlib import Path

from vovnet import VovnetError

# The spellings of a split in file names (hub shards, VLMEvalKit TSVs, lmms-eval configs).
ALIASES = {
    "train": ("train",),
    "dev": ("dev",),
    "validation": ("validation", "val", "valid"),
    "val": ("validation", "val", "valid"),
    "test": ("test",),
    "lite": ("lite",),
}
KNOWN_TOKENS = {t for spellings in ALIASES.values() for t in spellings}


def tokens(rel: str | Path) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", str(rel).lower()) if t}


def aliases(split: str) -> tuple[str, ...]:
    return ALIASES.get(split.lower(), (split.lower(),))


def names_split(rel: str | Path, split: str) -> bool:
    return bool(tokens(rel) & set(aliases(split)))


def names_any_split(rel: str | Path) -> bool:
    return bool(tokens(rel) & KNOWN_TOKENS)


def explicit_file(root: Path, cfg: dict, split: str) -> Path | None:
    """The file `splits: {split: file}` names, checked to stay inside root; None when splits is a list."""
    if not isinstance(cfg.get("splits"), dict):
        return None
    name = cfg["splits"].get(split)
    if not name:
        return None
    rel = Path(str(name))
    if rel.is_absolute() or ".." in rel.parts:
        raise VovnetError(f"params.yaml: splits.{split}: {name!r} must be a path inside the source folder")
    path = root / rel
    if not path.is_file():
        raise VovnetError(f"params.yaml: splits.{split}: {name!r} not found in {root}")
    return path


def pick(
    root: Path, files: list[Path], split: str, requested: list[str], what: str, found: list[Path] | None = None
) -> Path:
    """The one file of `files` (under root) that serves `split`; `found` lists every file seen, for errors."""
    rels = {f: f.relative_to(root).as_posix() for f in files}
    named = [f for f in files if names_split(rels[f], split)]
    if len(named) == 1:
        return named[0]
    found = ", ".join(f.relative_to(root).as_posix() for f in (files if found is None else found)) or "none"
    if len(named) > 1:
        raise VovnetError(
            f"{root}: {len(named)} {what} files for split {split!r} ({', '.join(rels[f] for f in named)}); "
            f"name one with splits: {{{split}: <file>}}"
        )
    if len(files) == 1 and len(requested) == 1 and not names_any_split(rels[files[0]]):
        return files[0]
    raise VovnetError(
        f"{root}: no {what} file for split {split!r} (found: {found}); a file serves only the split its "
        f"name says, or name it with splits: {{{split}: <file>}}"
    )
