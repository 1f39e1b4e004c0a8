"""Normalize one dataset: raw source -> sorted JSONL per split + image store + rejects + stats.

Everything is written into a temporary folder that replaces `data/processed/<name>/` in one rename, so
a failed or killed run never leaves a partial output where DVC or a later stage would take it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from vovnet import VovnetError
from vovnet.data.fingerprint import StatCache, sha256_file
from vovnet.data.image_store import ImageError, ImageStoreWriter, decode_base64, describe, set_pixel_limit
from vovnet.data.interfaces import Adapter
from vovnet.data.records import Row
from vovnet.data.split_normalizer import SplitNormalizer, empty_split, reason_kind, stable_reason
from vovnet.data.tsv import TsvRowError
from vovnet.io_utils import atomic_path, dumps, read_jsonl, write_lines

log = logging.getLogger("vovnet.normalize")
BATCH = 64  # rows in flight per worker batch: bounds memory whatever the file size


def sample_rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def _payload(ref) -> bytes:
    if ref.kind == "invalid":
        raise ImageError(ref.value)
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


def sampling_units(adapter, raw_dir: Path, cfg: dict, split: str, seed: int) -> set[str] | None:
    """The sampling groups max_samples keeps (None: keep all). A row that reuses another row's image joins
    that row's group, so a sample never holds a reference without its image."""
    if cfg["max_samples"] is None:
        return None
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.setdefault(g, g) != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    group_of, refs = {}, []
    for r in adapter.iter_rows(raw_dir, cfg, split):
        if isinstance(r, Row):
            find(r.group)
            group_of.setdefault(r.key, r.group)
            refs += [(r.group, ref.value) for ref in r.images if ref.kind == "ref"]
    for group, key in refs:
        if key in group_of:
            a, b = find(group), find(group_of[key])
            if a != b:
                parent[max(a, b)] = min(a, b)  # the smallest name represents its unit: order-independent
    units: dict[str, list[str]] = {}
    for g in list(parent):
        units.setdefault(find(g), []).append(g)
    keep = sorted(units, key=lambda u: sample_rank(seed, u))[: cfg["max_samples"]]
    return {g for u in keep for g in units[u]}


def _read_rows(adapter, raw_dir: Path, cfg: dict, split: str) -> Iterator:
    """The stage's error boundary for reading: a source that breaks mid-read (a corrupt parquet page while
    streaming, a file that vanishes) stops the stage with one line naming the source, split and row.
    Only input errors are caught, by type; a bug keeps its traceback."""
    import pyarrow

    n = 0
    try:
        for item in adapter.iter_rows(raw_dir, cfg, split):
            yield item
            n += 1
    except (pyarrow.ArrowException, OSError, UnicodeDecodeError) as exc:
        detail = stable_reason(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise VovnetError(
            f"{raw_dir}: split {split!r}: source unreadable after {n} rows "
            f"({type(exc).__name__}{': ' + detail if detail else ''})"
        ) from None


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


def normalize_dataset(
    name: str,
    cfg: dict,
    raw_dir: str | Path,
    out_dir: str | Path,
    *,
    adapter: Adapter,
    seed: int,
    max_image_pixels: int,
    workers="auto",
    export_parquet: bool = False,
) -> dict:
    """The recipe: each split of raw_dir, read by `adapter` (the dataset's task, which the stage loads),
    becomes out_dir/<name>_<split>.jsonl over one image store, with rejects.jsonl; returns the statistics
    (metrics/normalize/<name>.json). out_dir appears whole or not at all."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.exists():
        raise VovnetError(f"{raw_dir}: raw data not found (run `dvc repro download@{name}` first)")
    set_pixel_limit(max_image_pixels)
    stats = {"dataset": name, "adapter": cfg["adapter"], "splits": {}, "rejects": 0, "reject_reasons": {}}
    hashes = StatCache(raw_dir)
    # The source files are hashed on their own thread while the rows are read: sha256 releases the GIL.
    with Decoder(worker_count(workers), max_image_pixels) as decoder, ThreadPoolExecutor(1) as hasher:
        with atomic_path(out_dir) as tmp:
            store = ImageStoreWriter(tmp, keep_bytes=cfg["download_images"])
            rejects = []
            for split in cfg["splits"]:
                norm = SplitNormalizer(name, cfg, split, adapter, store)
                files = adapter.source_files(raw_dir, cfg, split)
                facts = hasher.submit(file_facts, raw_dir, files, hashes)
                read_split(norm, raw_dir, seed, decoder)
                jsonl = write_split(norm, raw_dir, files, tmp, export_parquet)
                stats["splits"][split] = split_stats(norm, facts.result(), jsonl)
                rejects += norm.rejects
            store.close()
            hashes.save()
            stats.update(write_rejects(name, rejects, tmp / "rejects.jsonl"))
            stats["images_stored"] = len(store.index)
            stats["image_bytes"] = sum(e["size"] for e in store.index.values())
    return stats


class Decoder:
    """Decodes and hashes a batch of rows' images: in this thread, or with workers on a thread pool that
    decodes one batch while the next is read. Threads, not processes: JPEG/PNG decoding and sha256
    release the GIL, and rows (megabytes of base64) need no pickling between processes."""

    def __init__(self, workers: int, max_image_pixels: int):
        self.workers, self.max_image_pixels = workers, max_image_pixels
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool:
            self.pool.shutdown()

    def batch_size(self) -> int:
        return BATCH * max(1, self.workers)

    def run(self, batches: Iterator[list[Row]], handle) -> None:
        """handle(row, prepared) for every row of every batch, in order."""
        pending = None
        for rows in batches:
            args = [(r, self.max_image_pixels) for r in rows]
            if self.pool is None:
                for row, prep in map(_prepare, args):
                    handle(row, prep)
                continue
            submitted = [self.pool.submit(_prepare, a) for a in args]
            for fut in pending or []:
                handle(*fut.result())
            pending = submitted
        for fut in pending or []:
            handle(*fut.result())


def read_split(norm: SplitNormalizer, raw_dir: Path, seed: int, decoder: Decoder) -> None:
    """Every raw row of the split into `norm`: a malformed row a reject, a row max_samples leaves out
    counted, the rest decoded."""
    adapter, cfg, split = norm.adapter, norm.cfg, norm.split
    keep = sampling_units(adapter, raw_dir, cfg, split, seed)

    def kept(batch: list) -> list[Row]:
        rows = []
        for r in batch:
            if isinstance(r, TsvRowError):
                norm.reject_malformed(r)
            elif keep is not None and r.group not in keep:
                norm.rows_read += 1
                norm.sampled_out += 1
                norm.questions_sampled_out.add(r.group)
            else:
                rows.append(r)
        return rows

    batches = _batches(_read_rows(adapter, raw_dir, cfg, split), decoder.batch_size())
    decoder.run((kept(b) for b in batches), norm.handle)


def write_split(norm: SplitNormalizer, raw_dir: Path, files: list[Path], tmp: Path, export_parquet: bool) -> Path:
    """References resolved, counts checked, records written sorted (and as parquet when asked); a split
    with no records stops the stage."""
    norm.finish()
    norm.check_counts()
    if not norm.offsets:
        raise empty_split(raw_dir, files, norm)
    jsonl = tmp / f"{norm.name}_{norm.split}.jsonl"
    norm.write_sorted(jsonl)
    if export_parquet:
        _write_parquet(jsonl, jsonl.with_suffix(".parquet"))
    return jsonl


def split_stats(norm: SplitNormalizer, read: list[dict], jsonl: Path) -> dict:
    """One split's figures in the stage statistics; `read`: its source files' facts."""
    n = len(norm.offsets)
    log.debug(
        "%s/%s: %d rows from %s -> %d records, %d rejects",
        norm.name,
        norm.split,
        norm.rows_read,
        ", ".join(f["name"] for f in read),
        n,
        len(norm.rejects),
    )
    return {
        "rows": norm.rows_read,
        "records": n,
        "rejects": len(norm.rejects),
        "left_out_by_max_samples": norm.sampled_out,
        "questions": len(norm.questions),
        "questions_left_out_by_max_samples": len(norm.questions_sampled_out),
        "images": len(norm.shas),
        "source_files": read,
        "sha256": sha256_file(jsonl),
    }


def write_rejects(name: str, rejects: list[dict], path: Path) -> dict:
    """rejects.jsonl in a stable order, each logged; returns the total and the count per kind of reason."""
    rejects = sorted(rejects, key=lambda r: (r["split"], r["row"], r["field"]))
    write_lines(path, rejects)
    reasons: dict[str, int] = {}
    for r in rejects:
        log.warning("reject %s/%s row %s (%s): %s", name, r["split"], r["row"], r["field"], r["reason"])
        reasons[reason_kind(r["reason"])] = reasons.get(reason_kind(r["reason"]), 0) + 1
    return {"rejects": len(rejects), "reject_reasons": reasons}


def _write_parquet(jsonl: Path, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Nested meta varies by dataset; store it as canonical JSON text so every split has one schema.
    rows = [{**r, "meta": dumps(r["meta"])} for r in read_jsonl(jsonl)]
    pq.write_table(pa.Table.from_pylist(rows), path)
