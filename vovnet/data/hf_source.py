"""Hugging Face datasets access: the same `load_dataset` call for a hub id and a local folder."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

from vovnet import VovnetError


def _hf_error(source: str, exc: Exception) -> VovnetError:
    return VovnetError(f"{source}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")


def config_names(path: str | Path) -> list[str]:
    import datasets

    try:
        return list(datasets.get_dataset_config_names(str(path)))
    except Exception:  # listing is best-effort decoration of an error message
        return []


def iter_split(path: str | Path, subset: str | None, split: str, streaming: bool,
               image_columns: tuple[str, ...] = (), required: tuple[str, ...] = ()) -> Iterator[dict]:
    """Rows of one split; image columns come back as raw encoded bytes (never re-encoded)."""
    import datasets

    path = str(path)
    # A private, throw-away Arrow cache: the shared ~/.cache can serve stale tables for a local folder
    # whose files changed, and nothing of a run should outlive it outside its outputs.
    with tempfile.TemporaryDirectory(prefix="vovnet-hf-") as cache:
        yield from _iter_split(datasets, path, subset, split, streaming, image_columns, required, cache)


def _iter_split(datasets, path, subset, split, streaming, image_columns, required, cache):
    try:
        ds = datasets.load_dataset(path, subset, split=split, streaming=streaming, cache_dir=cache)
    except ValueError as exc:
        msg = str(exc)
        if "Config name is missing" in msg or "BuilderConfig" in msg:
            names = config_names(path)
            raise VovnetError(f"{path}: needs a config name (params `subset`); available: {', '.join(names) or msg}") from None
        if "Unknown split" in msg or "split" in msg.lower():
            raise VovnetError(f"{path}: split {split!r} not found ({msg.splitlines()[0]})") from None
        raise _hf_error(path, exc) from None
    except FileNotFoundError as exc:
        raise _hf_error(path, exc) from None
    except Exception as exc:  # datasets raises many types (DatasetGenerationError, ArrowInvalid, ...)
        raise _hf_error(path, exc) from None
    columns = list(ds.features.keys()) if ds.features is not None else []
    missing = [c for c in required if c not in columns]
    if missing:
        raise VovnetError(f"{path} ({subset or 'default'}/{split}): missing required column(s) {', '.join(missing)}")
    for col in image_columns:
        if col in columns and isinstance(ds.features[col], datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    # Batched access: per-row indexing of an Arrow table costs ~10x more Python than slicing batches.
    for batch in ds.iter(batch_size=256):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys)):
            yield dict(zip(keys, values))

