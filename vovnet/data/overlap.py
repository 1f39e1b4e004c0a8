"""Overlap keys: how two records are recognised as the same item (merge, training and evaluation guards).

Every layer that must keep sets apart (merge's held-out part, stage 1 vs stage 2, training vs evaluation)
imports these keys from here, so they always agree.
"""
from __future__ import annotations

import hashlib
import re

from vovnet.io_utils import dumps


def _norm(text) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip().lower()


def text_key(rec: dict) -> str:
    return "q:" + _norm(rec["question"]) + "|" + _norm(rec.get("hint")) + "|" + "|".join(sorted(_norm(c) for c in rec.get("choices") or []))


def overlap_key(rec: dict) -> str:
    """image+question hash used by the leakage guards (circular copies share it)."""
    shas = sorted(im["sha256"] for im in rec["images"])
    return hashlib.sha256(dumps([shas, _norm(rec["question"])]).encode()).hexdigest()


def content_key(rec: dict) -> str:
    return dumps([rec["question"], rec.get("hint"), rec.get("choices"), rec["answer"],
                  [im["sha256"] for im in rec["images"]]])


def source_key(rec: dict) -> str | None:
    """MMBench family: the question's source index without its circular rotation, or None.

    MMBench dev, its circular copies and MMBench-Lite's copies of dev items share it even when their
    option text or image encoding differ."""
    group = (rec.get("meta") or {}).get("circular_group")
    return None if group is None else f"mmbench:{group}"


def find_overlap(train: list[dict], other: list[dict], by_source: bool = False) -> list[tuple[str, str]]:
    """(train id, other id) of every train record that is the same item as one in `other`: by id, by
    image+question, and with `by_source` also by MMBench source index."""
    ids = {r["id"] for r in other}
    keys = {overlap_key(r): r["id"] for r in other}
    sources = {k: r["id"] for r in other if (k := source_key(r)) is not None} if by_source else {}
    hits = []
    for r in train:
        if r["id"] in ids:
            hits.append((r["id"], r["id"]))
        elif (other_id := keys.get(overlap_key(r))) is not None:
            hits.append((r["id"], other_id))
        elif by_source and (other_id := sources.get(source_key(r))) is not None:
            hits.append((r["id"], other_id))
    return hits
