"""merge: the training mix, a validation file and the held-out evaluation part, split by content groups.

Records are grouped (union-find) by shared image, by question text + option set and by MMBench source
index, so MMBench's circular copies, items sharing an image and MMBench-Lite's copies of MMBench dev
items always land on the same side, even when two uploads encode an image differently. A group goes to
held-out / val / train by a seeded hash of its id.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from vovnet import VovnetError
from vovnet.config import processed_file, split_ref
from vovnet.data.overlap import content_key, find_overlap, source_key, text_key
from vovnet.io_utils import atomic_path, read_jsonl, write_lines

log = logging.getLogger("vovnet.merge")


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))  # the smaller key is the root: group ids do not depend on order
            self.parent[hi] = lo


def group_ids(records: list[dict]) -> list[str]:
    uf = _UnionFind()
    for rec in records:
        keys = [text_key(rec)] + ["img:" + im["sha256"] for im in rec["images"]]
        if (sk := source_key(rec)) is not None:
            keys.append(sk)
        for k in keys[1:]:
            uf.union(keys[0], k)
    return [uf.find(text_key(r)) for r in records]


def bucket(seed: int, group: str) -> float:
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:15], 16) / 16**15


def merge(cfg: dict, seed: int, root: str | Path = "data/processed") -> tuple[dict[str, list[dict]], dict]:
    heldout_src = split_ref(cfg["heldout_source"], "merge.heldout_source")
    sources = [split_ref(s, "merge.sources") for s in cfg["sources"]] if cfg["enabled"] else [heldout_src]
    if heldout_src not in sources:
        sources.insert(0, heldout_src)
    records, origin = [], []
    for ds, split in sources:
        for rec in read_jsonl(processed_file(ds, split, root)):
            records.append(rec)
            origin.append(f"{ds}/{split}")
    stats = {
        "sources": {f"{d}/{s}": origin.count(f"{d}/{s}") for d, s in sources},
        "duplicates_dropped": 0,
        "dropped_in_heldout_groups": 0,
    }
    seen, keep = set(), []
    for rec, src in zip(records, origin):
        key = content_key(rec)
        if key in seen:
            stats["duplicates_dropped"] += 1
            continue
        seen.add(key)
        keep.append((rec, src))
    groups = group_ids([r for r, _ in keep])
    hold_frac, val_frac = cfg["heldout_fraction"], cfg["val_fraction"]
    if not (0 <= hold_frac < 1 and 0 <= val_frac < 1 and hold_frac + val_frac < 1):
        raise VovnetError("params.yaml: merge.heldout_fraction + merge.val_fraction must be in [0, 1)")
    out = {"train": [], "val": [], "heldout": []}
    for (rec, src), gid in zip(keep, groups):
        u = bucket(seed, gid)
        rec = {
            **rec,
            "meta": {**rec["meta"], "merged_from": src, "group": hashlib.sha256(gid.encode()).hexdigest()[:16]},
        }
        if u < hold_frac:
            if src == cfg["heldout_source"]:
                out["heldout"].append(rec)
            else:  # e.g. an MMBench-Lite copy of a held-out MMBench item: never train on it
                stats["dropped_in_heldout_groups"] += 1
        elif u < hold_frac + val_frac:
            out["val"].append(rec)
        else:
            out["train"].append(rec)
    for part in out.values():
        part.sort(key=lambda r: r["id"])
    guard = {"heldout": out["heldout"]}
    for ref in cfg["guard_sets"]:
        ds, split = split_ref(ref, "merge.guard_sets")
        guard[ref] = list(read_jsonl(processed_file(ds, split, root)))
    stats["overlap"] = {}
    for name, other in guard.items():
        hits = find_overlap(out["train"], other)
        stats["overlap"][name] = len(hits)
        if hits and not cfg["allow_overlap"]:
            examples = ", ".join(f"{a}~{b}" for a, b in hits[:3])
            raise VovnetError(
                f"merge: {len(hits)} of {len(out['train'])} training records overlap evaluation set "
                f"{name} (by id, image+question or MMBench source index; e.g. {examples}); fix the sources or set "
                "merge.allow_overlap: true"
            )
    stats.update({k: len(v) for k, v in out.items()})
    return out, stats


def write_merged(out: dict[str, list[dict]], name: str, root: str | Path = "data/processed") -> None:
    with atomic_path(Path(root) / name) as tmp:
        tmp.mkdir()
        for part, recs in out.items():
            write_lines(tmp / f"{name}_{part}.jsonl", recs)
