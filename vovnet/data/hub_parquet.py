"""A hub dataset read from one config's parquet files, one image per row (TextVQA, MMStar, POPE,
ScienceQA-IMG): the files of a split, and its rows keyed by a source column, or by position where the
data has no id column."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vovnet.data import hf_source, split_files
from vovnet.data.image_refs import hf_image_ref
from vovnet.data.records import Reject, Row, source_key


def source_files(raw_dir: Path, cfg: dict, split: str) -> list[Path]:
    """The file params name for the split, else the config's files of the split in the snapshot."""
    explicit = split_files.explicit_file(raw_dir, cfg, split)
    if explicit is not None:
        return [explicit]
    return hf_source.split_files_of(raw_dir, cfg["subset"], split, list(cfg["splits"]))


def hf_configs(raw_dir: Path, cfg: dict) -> list[str | None]:
    return [cfg["subset"]]


def keyed_rows(
    raw_dir: Path, cfg: dict, split: str, required: tuple[str, ...], key_column: str | None, where: str | None = None
) -> Iterator[Row]:
    """The split's rows, each keyed by `key_column` (None: by its position, `row<N>`)."""
    files = source_files(raw_dir, cfg, split)
    for i, cells in enumerate(hf_source.iter_rows(files, required, where or f"split {split}")):
        yield keyed_row(cells, i, raw_dir, key_column)


def keyed_row(cells: dict, i: int, snapshot: Path, key_column: str | None) -> Row:
    """One row and its image cell; a key that is not usable becomes a reject of that row, keyed by position."""
    key = f"row{i}"
    if key_column is not None:
        try:
            key = source_key(cells, key_column)
        except Reject as rej:
            cells["_error"] = (rej.field, rej.reason)
    return Row(index=i, key=key, group=key, fields=cells, images=[hf_image_ref("image", cells.get("image"), snapshot)])
