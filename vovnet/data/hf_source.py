"""Hugging Face dataset folders: one config's one split, resolved to its files and streamed with pyarrow.

A hub snapshot is often partial: `download` fetches only the files of the configs and splits a run needs
(`mmbench_en_dev/*` out of LMMs-Eval-Lite's 17 configs). So nothing here asks `datasets` to resolve the
whole repository: the README's `configs:` metadata maps (config, split) to file patterns, only those files
are opened, and their parquet row groups are streamed. No other config is resolved, no other split
prepared, no temporary copy built. A folder without `configs:` metadata falls back to the hub's file
layout: the split a file serves is the one its name says (`data/validation-00000-of-00001.parquet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from vovnet import VovnetError
from vovnet.config import parse_yaml
from vovnet.data import split_files

CARD = "README.md"
BATCH_ROWS = 64  # rows per Arrow batch: a few MB of images in flight, whatever the row-group size
READ_BUFFER = 1 << 20  # buffered column reads; pyarrow's default pre-buffering holds every row group read


@dataclass(frozen=True)
class HfConfig:
    name: str
    data_files: dict[str, list[str]]  # split -> file patterns relative to the folder
    default: bool = False


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _data_files(spec) -> dict[str, list[str]]:
    """The card's `data_files` forms: a pattern, a list of patterns (both split `train`), a list of
    {split, path} entries, or a {split: pattern(s)} mapping."""
    if isinstance(spec, str):
        return {"train": [spec]}
    if isinstance(spec, dict):
        return {str(k): _as_list(v) for k, v in spec.items()}
    if isinstance(spec, list):
        if all(isinstance(s, str) for s in spec):
            return {"train": list(spec)}
        out: dict[str, list[str]] = {}
        for entry in spec:
            if isinstance(entry, dict) and "path" in entry:
                out.setdefault(str(entry.get("split", "train")), []).extend(_as_list(entry["path"]))
        return out
    return {}


def card_configs(folder: str | Path) -> list[HfConfig] | None:
    """The `configs:` of the folder's README front matter; None when there is no such metadata."""
    card = Path(folder) / CARD
    if not card.is_file():
        return None
    # Adapters ask once per subject and per pass over a split: parse a card once while it is unchanged.
    st = card.stat()
    configs = _parse_card(str(card), str(card.resolve()), st.st_size, st.st_mtime_ns)
    return None if configs is None else list(configs)


@lru_cache(maxsize=16)
def _parse_card(card_path: str, resolved: str, size: int, mtime_ns: int) -> tuple[HfConfig, ...] | None:
    card = Path(card_path)
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    meta = parse_yaml(text[3:end], f"{card}: invalid YAML metadata")
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not isinstance(configs, list):
        return None
    out = []
    for c in configs:
        if isinstance(c, dict) and "data_files" in c:
            out.append(
                HfConfig(str(c.get("config_name", "default")), _data_files(c["data_files"]), bool(c.get("default")))
            )
    return tuple(out) or None


def select_configs(folder: Path, configs: list[HfConfig], subset) -> list[HfConfig]:
    """The configs `subset` names: one name, a list, `all`, or null (the default config)."""
    names = [c.name for c in configs]
    by_name = {c.name: c for c in configs}
    if subset == "all":
        return configs
    if subset is None:
        chosen = [c for c in configs if c.default] or [c for c in configs if c.name == "default"]
        if not chosen and len(configs) == 1:
            chosen = configs
        if not chosen:
            raise VovnetError(f"{folder}: needs a config name (params `subset`); it has: {', '.join(names)}")
        return chosen[:1]
    wanted = [subset] if isinstance(subset, str) else list(subset)
    unknown = [s for s in wanted if s not in by_name]
    if unknown:
        raise VovnetError(f"{folder}: no config {', '.join(map(repr, unknown))}; it has: {', '.join(names)}")
    return [by_name[s] for s in wanted]


def split_patterns(folder: Path, config: HfConfig, split: str) -> list[str]:
    if split not in config.data_files:
        raise VovnetError(
            f"{folder}: config {config.name!r} has no split {split!r}; it has: {', '.join(config.data_files)}"
        )
    patterns = config.data_files[split]
    for p in patterns:
        if Path(p).is_absolute() or ".." in Path(p).parts or "://" in p:
            raise VovnetError(f"{folder}/{CARD}: data file pattern {p!r} leaves the folder")
    return patterns


def config_names(folder: str | Path) -> list[str]:
    configs = card_configs(folder)
    return [c.name for c in configs] if configs else []


def split_files_of(folder: str | Path, subset: str | None, split: str, requested: list[str]) -> list[Path]:
    """The data files of one config's one split; a one-line error when the snapshot lacks them."""
    folder = Path(folder)
    configs = card_configs(folder)
    if configs is None:
        return _layout_files(folder, subset, split, requested)
    config = select_configs(folder, configs, subset)[0]
    patterns = split_patterns(folder, config, split)
    root = folder.resolve()
    files = sorted(
        {p for pat in patterns for p in folder.glob(pat) if p.is_file() and p.resolve().is_relative_to(root)}
    )
    if not files:
        raise VovnetError(
            f"{folder}: no files match {', '.join(patterns)} (config {config.name!r}, split {split!r}); "
            "the snapshot lacks them: rerun `dvc repro download@...` or fetch them with "
            f"`hf download --repo-type dataset <id> --include '{patterns[0]}' --local-dir {folder}`"
        )
    return files


def _layout_files(folder: Path, subset: str | None, split: str, requested: list[str]) -> list[Path]:
    """Without `configs:` metadata: the hub's layout, where a shard's name says its split."""
    base = folder / subset if subset else folder
    if subset and not base.is_dir():
        have = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise VovnetError(f"{folder}: no config {subset!r} (no README configs; folders: {', '.join(have) or 'none'})")
    shards = sorted(p for p in base.rglob("*.parquet") if ".cache" not in p.parts)
    named = [p for p in shards if split_files.names_split(p.relative_to(base).as_posix(), split)]
    if named:
        return named
    if not shards:
        raise VovnetError(f"{base}: no parquet files (and no README `configs:` metadata)")
    return [split_files.pick(base, shards, split, requested, "parquet")]


def open_parquet(files: list[Path], required: tuple[str, ...], where: str):
    """Open every file first (footer and schema), so a truncated shard fails before anything is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    opened = []
    for f in files:
        try:
            pf = pq.ParquetFile(f, pre_buffer=False, buffer_size=READ_BUFFER)
        except (pa.ArrowException, OSError) as exc:
            raise VovnetError(f"{f}: unreadable parquet (truncated or corrupt: {_first_line(exc)})") from None
        names = pf.schema_arrow.names
        missing = [c for c in required if c not in names]
        if missing:
            raise VovnetError(
                f"{f} ({where}): missing required column(s) {', '.join(missing)} (columns: {', '.join(names)})"
            )
        opened.append((f, pf))
    return opened


def iter_rows(files: list[Path], required: tuple[str, ...] = (), where: str = "") -> Iterator[dict]:
    """Rows of the files as dicts; an HF Image cell stays its {bytes, path} struct (never decoded)."""
    import pyarrow as pa

    for f, pf in open_parquet(files, required, where):
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS):
                cols = batch.to_pydict()
                keys = list(cols)
                for values in zip(*(cols[k] for k in keys)):
                    yield dict(zip(keys, values))
        except (pa.ArrowException, OSError) as exc:
            raise VovnetError(f"{f}: unreadable parquet (truncated or corrupt: {_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
