"""Normalize one dataset: raw source -> sorted JSONL per split + image store + rejects + stats.

Everything is written into a temporary folder that replaces `data/processed/<name>/` in one rename, so
a failed or killed run never leaves a partial output where DVC or a later stage would take it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from vovnet import VovnetError
from vovnet.data.adapters import get_adapter
from vovnet.data.fingerprint import StatCache
from vovnet.data.image_store import ImageError, ImageStoreWriter, decode_base64, describe, set_pixel_limit
from vovnet.data.records import Reject, Row
from vovnet.data.tsv import TsvRowError
from vovnet.io_utils import atomic_path, dumps, read_jsonl, write_lines

log = logging.getLogger("vovnet.normalize")
BATCH = 64  # rows in flight per worker batch: bounds memory whatever the file size


def sample_rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def _payload(ref) -> bytes:
    if ref.kind == "b64":
        return decode_base64(ref.value)
    if ref.kind == "bytes":
        if ref.value is None:
            raise ImageError(f"{ref.field} is referenced but empty or absent")
        return ref.value
    if ref.kind == "path":
        return Path(ref.value).read_bytes()
    raise AssertionError(ref.kind)


def _prepare(args) -> tuple:
    """Worker: decode/hash/verify the row's own images (references are resolved later)."""
    row, max_pixels = args
    out = []
    for ref in row.images:
        if ref.kind == "ref":
            out.append(("ref", ref.value))
            continue
        try:
            data = _payload(ref)
            out.append(("ok", data, describe(data, max_pixels)))
        except ImageError as exc:
            out.append(("err", ref.field, str(exc)))
        except OSError as exc:
            out.append(("err", ref.field, f"cannot read image file: {exc.strerror}"))
    return row, out


def _batches(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class SplitNormalizer:
    """Records are spooled to a temporary file as they come and written sorted at the end, so memory
    holds only ids and offsets, not records: peak RSS stays flat in the number of rows."""

    def __init__(self, name: str, cfg: dict, split: str, adapter, store: ImageStoreWriter):
        self.name, self.cfg, self.split, self.adapter, self.store = name, cfg, split, adapter, store
        self.spool = tempfile.TemporaryFile()
        self.offsets: dict[str, tuple[int, int]] = {}
        self.rejects: list[dict] = []
        self.keys: set[str] = set()
        self.images_by_key: dict[str, tuple[str, ...]] = {}
        self.deferred: list[tuple[Row, list]] = []
        self.shas: set[str] = set()
        self.rows_read = 0  # source rows of the split (after max_samples), good or rejected

    def reject(self, row_index: int, key: str | None, field: str, reason: str) -> None:
        self.rejects.append({"dataset": self.name, "split": self.split, "row": row_index, "source_id": key,
                             "field": field, "reason": reason})

    def handle(self, row: Row, prepared: list) -> None:
        if row.key in self.keys:
            self.reject(row.index, row.key, "id", f"duplicate id {row.key}")
            return
        self.keys.add(row.key)
        images = []
        for item in prepared:
            if item[0] == "err":
                self.reject(row.index, row.key, item[1], item[2])
                return
            if item[0] == "ref":
                if item[1] not in self.images_by_key:
                    self.deferred.append((row, prepared))
                    self.keys.discard(row.key)
                    return
                images.extend(self._meta(sha) for sha in self.images_by_key[item[1]])
            else:
                _, data, meta = item
                self.store.add(data, meta)
                images.append(meta)
        self.images_by_key[row.key] = tuple(im["sha256"] for im in images)
        self._build(row, images)

    def _meta(self, sha: str) -> dict:
        e = self.store.index[sha]
        return {"sha256": sha, "format": e["format"], "width": e["width"], "height": e["height"]}

    def _build(self, row: Row, images: list[dict]) -> None:
        try:
            record = self.adapter.build(self.name, self.split, row, images)
        except Reject as rej:
            self.reject(row.index, row.key, rej.field, rej.reason)
            return
        if record["id"] in self.offsets:
            self.reject(row.index, row.key, "id", f"duplicate record id {record['id']} (identical content)")
            return
        line = (dumps(record) + "\n").encode("utf-8")
        self.offsets[record["id"]] = (self.spool.tell(), len(line))
        self.spool.write(line)
        self.shas.update(im["sha256"] for im in images)

    def write_sorted(self, path: Path) -> None:
        """Write the spooled records sorted by id, then drop the spool."""
        with open(path, "wb") as fh:
            for rid in sorted(self.offsets):
                off, n = self.offsets[rid]
                self.spool.seek(off)
                fh.write(self.spool.read(n))
        self.spool.close()

    def finish(self) -> None:
        """Rows whose image cell referenced a later row; anything still unresolved is rejected."""
        pending, self.deferred = self.deferred, []
        for row, prepared in pending:
            refs = [p[1] for p in prepared if p[0] == "ref"]
            missing = [r for r in refs if r not in self.images_by_key]
            if missing:
                self.reject(row.index, row.key, "image", f"refers to index {missing[0]}, which has no image")
                continue
            self.handle(row, prepared)


def iter_selected(adapter, raw_dir: Path, cfg: dict, split: str, seed: int) -> Iterator:
    rows = adapter.iter_rows(raw_dir, cfg, split)
    if cfg["max_samples"] is None:
        yield from rows
        return
    # First pass reads only the sampling units, so the sample is the same whatever the order or streaming.
    groups = {r.group for r in adapter.iter_rows(raw_dir, cfg, split) if isinstance(r, Row)}
    keep = set(sorted(groups, key=lambda g: sample_rank(seed, g))[: cfg["max_samples"]])
    for r in rows:
        if not isinstance(r, Row) or r.group in keep:
            yield r


def worker_count(setting) -> int:
    """`normalize.workers`: a positive count, or `auto` for the cores this process may use."""
    if setting == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise VovnetError(f"params.yaml: normalize.workers: a positive integer or auto, got {setting!r}")
    return setting


def file_facts(raw_dir: Path, files: list[Path], hashes: StatCache) -> list[dict]:
    """Name (relative to the raw folder), size and sha256 of each source file; `download` has usually
    hashed them already (cached by size and mtime), else they are read here."""
    out = []
    for f in files:
        st = f.stat()
        out.append({"name": f.relative_to(raw_dir).as_posix(), "bytes": st.st_size, "sha256": hashes.sha256(f, st)})
    return out


def normalize_dataset(name: str, cfg: dict, raw_dir: str | Path, out_dir: str | Path, *, seed: int,
                      max_image_pixels: int, workers="auto", export_parquet: bool = False) -> dict:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.exists():
        raise VovnetError(f"{raw_dir}: raw data not found (run `dvc repro download@{name}` first)")
    set_pixel_limit(max_image_pixels)
    adapter = get_adapter(cfg["adapter"])
    stats = {"dataset": name, "adapter": cfg["adapter"], "splits": {}, "rejects": 0, "reject_reasons": {}}
    workers = worker_count(workers)
    # Threads, not processes: JPEG/PNG decoding and sha256 release the GIL, and rows (megabytes of
    # base64) need no pickling between processes.
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    # The source files are hashed on their own thread while the rows are read: sha256 releases the GIL.
    hasher = ThreadPoolExecutor(1)
    hashes = StatCache(raw_dir)
    try:
        with atomic_path(out_dir) as tmp:
            store = ImageStoreWriter(tmp, keep_bytes=cfg["download_images"])
            all_rejects = []
            for split in cfg["splits"]:
                norm = SplitNormalizer(name, cfg, split, adapter, store)
                files = adapter.source_files(raw_dir, cfg, split)
                facts: Future = hasher.submit(file_facts, raw_dir, files, hashes)
                rows = iter_selected(adapter, raw_dir, cfg, split, seed)
                pending = None  # with workers, one batch decodes while the next is read (pipelined)
                for batch in _batches(rows, BATCH * max(1, workers)):
                    norm.rows_read += len(batch)
                    for bad in (r for r in batch if isinstance(r, TsvRowError)):
                        norm.reject(bad.row, None, "row", bad.reason)
                    args = [(r, max_image_pixels) for r in batch if isinstance(r, Row)]
                    if pool is None:
                        for row, prep in map(_prepare, args):
                            norm.handle(row, prep)
                        continue
                    submitted = [pool.submit(_prepare, a) for a in args]
                    if pending is not None:
                        for fut in pending:
                            norm.handle(*fut.result())
                    pending = submitted
                for fut in pending or []:
                    norm.handle(*fut.result())
                norm.finish()
                norm.write_sorted(tmp / f"{name}_{split}.jsonl")
                if export_parquet:
                    _write_parquet(tmp / f"{name}_{split}.jsonl", tmp / f"{name}_{split}.parquet")
                all_rejects += norm.rejects
                n = len(norm.offsets)
                read = facts.result()
                stats["splits"][split] = {"records": n, "rejects": len(norm.rejects), "images": len(norm.shas),
                                          "rows": norm.rows_read, "source_files": read}
                log.debug("%s/%s: %d rows from %s -> %d records, %d rejects", name, split, norm.rows_read,
                          ", ".join(f["name"] for f in read), n, len(norm.rejects))
            store.close()
            hashes.save()
            all_rejects.sort(key=lambda r: (r["split"], r["row"], r["field"]))
            write_lines(tmp / "rejects.jsonl", all_rejects)
            for r in all_rejects:
                log.warning("reject %s/%s row %s (%s): %s", name, r["split"], r["row"], r["field"], r["reason"])
                reason = r["reason"].split(":")[0].split(" (")[0]
                stats["reject_reasons"][reason] = stats["reject_reasons"].get(reason, 0) + 1
            stats["rejects"] = len(all_rejects)
            stats["images_stored"] = len(store.index)
            stats["image_bytes"] = sum(e["size"] for e in store.index.values())
    finally:
        hasher.shutdown()
        if pool:
            pool.shutdown()
    return stats


def _write_parquet(jsonl: Path, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Nested meta varies by dataset; store it as canonical JSON text so every split has one schema.
    rows = [{**r, "meta": dumps(r["meta"])} for r in read_jsonl(jsonl)]
    pq.write_table(pa.Table.from_pylist(rows), path)

