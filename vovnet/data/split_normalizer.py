"""One split's records as normalize builds them: spooled as they come, image references resolved after
the pass, written sorted by id; every row read is a record, a reject or left out by max_samples."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from vovnet import VovnetError
from vovnet.data.image_store import ImageStoreWriter
from vovnet.data.records import Reject, Row
from vovnet.data.tsv import TsvRowError
from vovnet.io_utils import dumps

OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
QUOTED = re.compile(r"'[^']*'")


def stable_reason(reason: str) -> str:
    """One line, the same on every run: no object reprs or memory addresses (rejects.jsonl is a DVC output)."""
    reason = OBJECT_REPR.sub(lambda m: f"<{m.group(1)}>", reason)
    reason = " ".join(ADDRESS.sub("0x?", reason).split())
    return "".join(c if c.isprintable() else "?" for c in reason)


def reason_kind(reason: str) -> str:
    """A reject reason without its particulars (quoted values, numbers), for the counts in the metrics."""
    head = reason.split(": ")[0].split(" (")[0]
    return re.sub(r"\b\d+\b", "N", QUOTED.sub("'…'", head))


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
        # max_samples counts questions (Row.group: MMBench's circular copies of one question share one), not rows
        self.questions: set[str] = set()
        self.questions_sampled_out: set[str] = set()

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
        self.questions.add(row.group)
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
