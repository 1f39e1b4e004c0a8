"""MMBench: exact-matching answer extraction (no LLM judge) and CircularEval.

A question with N options is asked N times with rotated options (the source's circular copies share
`meta.circular_group`); it scores 1 only if every rotation is answered correctly.
"""
from __future__ import annotations

from collections import defaultdict

from vovnet.data.records import LETTERS
from vovnet.model.answer_parsing import extract_choice


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    rows, groups = [], defaultdict(list)
    for rec, out in zip(records, outputs):
        pred = extract_choice(out, rec["choices"])
        gold = rec["answer"]["label"]
        correct = pred is not None and gold is not None and LETTERS.index(pred) == gold
        rows.append({"parsed": pred, "resolved": pred is not None, "score": float(correct)})
        groups[(rec["dataset"], rec["meta"].get("circular_group", rec["id"]))].append((rec, correct))
    per_cat: dict[str, list[float]] = defaultdict(list)
    per_l2: dict[str, list[float]] = defaultdict(list)
    group_scores = []
    for members in groups.values():
        ok = float(all(c for _, c in members))
        group_scores.append(ok)
        meta = members[0][0]["meta"]
        per_cat[meta.get("category") or "unknown"].append(ok)
        per_l2[meta.get("l2_category") or "unknown"].append(ok)
    summary = {
        "protocol": "mmbench_circular",
        "accuracy": sum(group_scores) / len(group_scores) if group_scores else 0.0,
        "questions": len(group_scores),
        "vanilla_accuracy": sum(r["score"] for r in rows) / len(rows) if rows else 0.0,
        "per_category": {k: sum(v) / len(v) for k, v in sorted(per_cat.items())},
        "per_l2_category": {k: sum(v) / len(v) for k, v in sorted(per_l2.items())},
    }
    return rows, summary
