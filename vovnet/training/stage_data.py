"""The records each training stage reads: stage 1 (the LM's branches) and stage 2 (the policy head).

Stage 2 learns the value of vision, `loss_no - loss_a`, per question. On questions the LM was tuned on in
stage 1 those losses are partly memorised and understate what vision adds to an unseen question, so the
head is trained on a separate file (merge's val part by default) that must share no item with stage 1's.
"""

from __future__ import annotations

from vovnet import VovnetError
from vovnet.data.overlap import find_overlap
from vovnet.io_utils import read_jsonl


def _read(path: str, key: str) -> list[dict]:
    records = list(read_jsonl(path))
    if not records:
        raise VovnetError(f"{path}: no training records (train.{key})")
    return records


def stage_records(tcfg: dict) -> tuple[list[dict], list[dict]]:
    """(stage-1 records from train.train_file, stage-2 records from train.policy_file), checked disjoint."""
    first = _read(tcfg["train_file"], "train_file")
    second = _read(tcfg["policy_file"], "policy_file")
    hits = find_overlap(second, first)
    if hits:
        examples = ", ".join(f"{a}~{b}" for a, b in hits[:3])
        raise VovnetError(
            f"{tcfg['policy_file']}: {len(hits)} of {len(second)} stage-2 records overlap stage 1's "
            f"{tcfg['train_file']} (by id, image+question or MMBench source index; e.g. {examples}); "
            "stage 2 must learn the value of vision on questions stage 1 never saw"
        )
    return first, second
