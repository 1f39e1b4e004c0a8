"""Normalize one dataset: raw source -> sorted JSONL per split + image store + rejects + stats.

Everything is written into a temporary folder that replaces `data/processed/<name>/` in one rename, so
a failed or killed run never leaves a partial output where DVC or a later stage would take it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from vovnet import VovnetError
from vovnet.data.fingerprint import StatCache, sha256_file
from vovnet.data.image_store import ImageError, ImageStoreWriter, decode_base64, describe, set_pixel_limit
from vovnet.data.records import Reject, Row
from vovnet.data.tsv import TsvRowError
from vovnet.io_utils import atomic_path, dumps, read_jsonl, write_lines
from vovnet.tasks.adapters import get_adapter

log = logging.getLogger("vovnet.normalize")
BATCH = 64  # rows in flight per worker batch: bounds memory whatever the file size
OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
QUOTED = re.compile(r"'[^']*'")


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


def stable_reason(reason: str) -> str:
    """One line, the same on every run: no object reprs or memory addresses (rejects.jsonl is a DVC output)."""
    reason = OBJECT_REPR.sub(lambda m: f"<{m.group(1)}>", reason)
    reason = " ".join(ADDRESS.sub("0x?", reason).split())
    return "".join(c if c.isprintable() else "?" for c in reason)


def reason_kind(reason: str) -> str:
    """A reject reason without its particulars (quoted values, numbers), for the counts in the metrics."""
    head = reason.split(": ")[0].split(" (")[0]
    return re.sub(r"\b\d+\b", "N", QUOTED.sub("'…'", head))


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
        self.deferred: list[tuple[Row, str]] = []
        self.shas: set[str] = set()
        self.rows_read = 0  # source rows of the split, good, rejected or left out by max_samples
        self.sampled_out = 0

    def reject(self, row_index: int, key: str | None, field: str, reason: str) -> None:
        self.rejects.append(
            {
                "dataset": self.name,
                "split": self.split,
                "row": row_index,
                "source_id": key,
                "field": field,
                "reason": stable_reason(reason),
            }
        )

    def handle(self, row: Row, prepared: list) -> None:
        self.rows_read += 1
        if row.key in self.keys:
            self.reject(row.index, row.key, "id", f"duplicate id {row.key}")
            return
        self.keys.add(row.key)
        for item in prepared:
            if item[0] == "err":
                self.reject(row.index, row.key, item[1], item[2])
                return
        if any(item[0] == "ref" for item in prepared):
            # A reference row is one image cell naming another row; resolved after the pass (finish).
            assert len(prepared) == 1, "a reference row holds exactly one image cell"
            self.deferred.append((row, prepared[0][1]))
            return
        images = []
        for _, data, meta in prepared:
            self.store.add(data, meta)
            images.append(meta)
        self.images_by_key[row.key] = tuple(im["sha256"] for im in images)
        self._build(row, images)

    def reject_malformed(self, bad: TsvRowError) -> None:
        self.rows_read += 1
        self.reject(bad.row, None, bad.field, bad.reason)

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
        """Resolve reference rows, whatever the order: follow each chain of references to a row with its
        own image; a chain that loops or ends at a row without one rejects every row on it."""
        target = {row.key: ref for row, ref in self.deferred}
        outcome: dict[str, tuple] = {}
        for start in target:
            chain, pos, key = [], {}, start
            while key in target and key not in outcome:
                if key in pos:
                    cycle = chain[pos[key] :]
                    first = cycle.index(min(cycle))
                    cycle = cycle[first:] + cycle[:first]
                    result = ("cycle", (" -> ".join(cycle + cycle[:1]), frozenset(cycle)))
                    break
                pos[key] = len(chain)
                chain.append(key)
                key = target[key]
            else:
                if key in outcome:
                    result = outcome[key]
                elif key in self.images_by_key:
                    result = ("ok", self.images_by_key[key])
                else:
                    result = ("missing", key)
            for k in chain:
                outcome[k] = result
        for row, ref in sorted(self.deferred, key=lambda d: d[0].index):
            kind, value = outcome[row.key]
            if kind == "cycle":
                loop, members = value
                lead = "" if row.key in members else f"refers to index {ref}, whose "
                self.reject(row.index, row.key, "image", f"{lead}image references form a cycle: {loop}")
            elif kind == "missing":
                end = "" if value == ref else f" (its references end at index {value})"
                self.reject(row.index, row.key, "image", f"refers to index {ref}, which has no image{end}")
            else:
                self._build(row, [self._meta(sha) for sha in value])
        self.deferred = []

    def check_counts(self) -> None:
        """Rows in equal rows out: every row read is a record, a reject, or left out by max_samples."""
        out = len(self.offsets) + len(self.rejects) + self.sampled_out
        if out != self.rows_read:
            raise AssertionError(
                f"{self.name}/{self.split}: {self.rows_read} rows read but {len(self.offsets)} records "
                f"+ {len(self.rejects)} rejects + {self.sampled_out} left out by max_samples"
            )


def empty_split(raw_dir: Path, files: list[Path], norm: SplitNormalizer) -> VovnetError:
    """A requested split with no records stops normalize: the file, the rows read, the rejects by reason."""
    kinds: dict[str, int] = {}
    for r in norm.rejects:
        kinds[reason_kind(r["reason"])] = kinds.get(reason_kind(r["reason"]), 0) + 1
    where = ", ".join(str(Path(f)) for f in files) or str(raw_dir)
    why = "; ".join(f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    sampled = f", {norm.sampled_out} left out by max_samples" if norm.sampled_out else ""
    return VovnetError(
        f"{where}: split {norm.split!r} yields no records: {norm.rows_read} rows read, "
        f"{len(norm.rejects)} rejected{' (' + why + ')' if why else ''}{sampled}"
    )


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
    seed: int,
    max_image_pixels: int,
    workers="auto",
    export_parquet: bool = False,
) -> dict:
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
                keep = sampling_units(adapter, raw_dir, cfg, split, seed)
                pending = None  # with workers, one batch decodes while the next is read (pipelined)
                for batch in _batches(_read_rows(adapter, raw_dir, cfg, split), BATCH * max(1, workers)):
                    rows = []
                    for r in batch:
                        if isinstance(r, TsvRowError):
                            norm.reject_malformed(r)
                        elif keep is not None and r.group not in keep:
                            norm.rows_read += 1
                            norm.sampled_out += 1
                        else:
                            rows.append(r)
                    args = [(r, max_image_pixels) for r in rows]
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
                norm.check_counts()
                if not norm.offsets:
                    raise empty_split(raw_dir, files, norm)
                norm.write_sorted(tmp / f"{name}_{split}.jsonl")
                if export_parquet:
                    _write_parquet(tmp / f"{name}_{split}.jsonl", tmp / f"{name}_{split}.parquet")
                all_rejects += norm.rejects
                n = len(norm.offsets)
                read = facts.result()
                stats["splits"][split] = {
                    "rows": norm.rows_read,
                    "records": n,
                    "rejects": len(norm.rejects),
                    "left_out_by_max_samples": norm.sampled_out,
                    "images": len(norm.shas),
                    "source_files": read,
                    "sha256": sha256_file(tmp / f"{name}_{split}.jsonl"),
                }
                log.debug(
                    "%s/%s: %d rows from %s -> %d records, %d rejects",
                    name,
                    split,
                    norm.rows_read,
                    ", ".join(f["name"] for f in read),
                    n,
                    len(norm.rejects),
                )
            store.close()
            hashes.save()
            all_rejects.sort(key=lambda r: (r["split"], r["row"], r["field"]))
            write_lines(tmp / "rejects.jsonl", all_rejects)
            for r in all_rejects:
                log.warning("reject %s/%s row %s (%s): %s", name, r["split"], r["row"], r["field"], r["reason"])
                kind = reason_kind(r["reason"])
                stats["reject_reasons"][kind] = stats["reject_reasons"].get(kind, 0) + 1
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
