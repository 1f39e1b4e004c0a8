"""Overlap keys: how two records are recognised as the same item (merge, training and evaluation guards).

Every layer that must keep sets apart (merge's held-out part, stage 1 vs stage 2, training vs evaluation)
imports these keys from here, so they always agree.
"""

from __future__ import annotations

import hashlib
import re

from vovnet.io_utils import dumps

CIRCULAR_STRIDE = 1_000_000  # MMBench circular copies: index = original + k * 1e6


def _norm(text) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip().lower()


def text_key(rec: dict) -> str:
    return (
        "q:"
        + _norm(rec["question"])
        + "|"
        + _norm(rec.get("hint"))
        + "|"
        + "|".join(sorted(_norm(c) for c in rec.get("choices") or []))
    )


def overlap_key(rec: dict) -> str:
    """image+question hash used by the leakage guards (circular copies share it)."""
    shas = sorted(im["sha256"] for im in rec["images"])
    return hashlib.sha256(dumps([shas, _norm(rec["question"])]).encode()).hexdigest()


def source_key(rec: dict) -> str | None:
    """The MMBench family's own item identity: release split + `index` modulo the circular stride.

    MMBench, MMBench-Lite (drawn from MMBench dev) and the circular copies of both keep the source
    `index`, so the same question is recognised even when two uploads encode its image differently.
    None for records of other datasets.
    """
    meta = rec.get("meta") or {}
    if meta.get("family") != "mmbench" or meta.get("index") is None:
        return None
    return f"mmbench:{meta.get('source_split') or rec['split']}:{int(meta['index']) % CIRCULAR_STRIDE}"


def content_key(rec: dict) -> str:
    return dumps(
        [rec["question"], rec.get("hint"), rec.get("choices"), rec["answer"], [im["sha256"] for im in rec["images"]]]
    )


def find_overlap(train: list[dict], other: list[dict]) -> list[tuple[str, str]]:
    """(train id, other id) for each training record that is an item of `other`: by id, by
    image+question, or by MMBench source index."""
    ids = {r["id"] for r in other}
    keys = {overlap_key(r): r["id"] for r in other}
    sources = {k: r["id"] for r in other if (k := source_key(r)) is not None}
    hits = []
    for r in train:
        if r["id"] in ids:
            hits.append((r["id"], r["id"]))
        elif (other_id := keys.get(overlap_key(r))) is not None:
            hits.append((r["id"], other_id))
        elif (sk := source_key(r)) is not None and (other_id := sources.get(sk)) is not None:
            hits.append((r["id"], other_id))
    return hits
