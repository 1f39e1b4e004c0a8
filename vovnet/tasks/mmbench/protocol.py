"""MMBench: VLMEvalKit's exact matching (no LLM judge), scored per rotation; CircularEval in the core.

Follows open-compass/VLMEvalKit at commit e8e78f05 (2026-08-18): `can_infer` in
vlmeval/utils/matching_util.py as `prefetch_answer` in vlmeval/dataset/utils/multiple_choice.py calls it
under `judge model = exact_matching`. Reimplemented here, rule for rule:

1. a known refusal phrase -> 'Z' (wrong);
2. the output with `.()[],:;!*#{}` turned into spaces and split into words: if exactly one option letter
   occurs as a word, it is the answer when its FIRST occurrence is among the last four words;
   if no letter occurs but the word 'Z' does -> 'Z';
3. "answer is X" / "correct answer is **X**" (case-insensitive, X in A-D, no word boundary after X);
4. option text: only when the lowered output is at most twice the options' total length, and exactly
   one option's text occurs in it.

Anything else is unresolved ('Z' in VLMEvalKit) and therefore wrong. A question with N options is asked
N times with rotated options (`meta.circular_group`); the evaluation core scores a question 1 only if
every rotation is right, exactly as `mcq_circular_eval` does without a judge.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vovnet.data.records import LETTERS
from vovnet.evaluation import prompt_variants
from vovnet.io_utils import atomic_path
from vovnet.model.answer_parsing import REJECT, extract_choice, match_option

__all__ = ["BREAKDOWNS", "REJECT", "extract_choice", "match_option", "score_records", "write_submission"]
BREAKDOWNS = ("category", "l2_category")
PROMPTS = {"qwen": prompt_variants.qwen}  # Qwen3-VL's reported scores' prompts (docs/evaluation.md)


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    """Per rotation: parsed letter ('Z' refusal / None unresolved), resolved, score 0/1."""
    rows = []
    for rec, out in zip(records, outputs):
        letter = match_option(out, rec["choices"])
        gold = rec["answer"]["label"]
        correct = letter not in (None, REJECT) and gold is not None and LETTERS.index(letter) == gold
        rows.append({"parsed": letter, "resolved": letter not in (None, REJECT), "score": float(correct)})
    vanilla = sum(r["score"] for r in rows) / len(rows) if rows else 0.0
    return rows, {"protocol": "mmbench", "vanilla_accuracy": vanilla}


SUBMISSION_COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "prediction", "category", "l2-category", "split"]


def write_submission(path: Path, records: list[dict], outputs: list[str]) -> None:
    """MMBench's upload layout: the source columns and `prediction`, an option letter, in index order."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(SUBMISSION_COLUMNS)
        for rec, out in sorted(zip(records, outputs), key=lambda t: t[0]["meta"].get("index", 0)):
            opts = (rec["choices"] or []) + [""] * (4 - len(rec["choices"] or []))
            pred = extract_choice(out, rec["choices"] or []) or ""
            w.writerow(
                [
                    rec["meta"].get("index", rec["id"]),
                    rec["question"],
                    rec["hint"] or "",
                    *opts[:4],
                    pred,
                    rec["meta"].get("category") or "",
                    rec["meta"].get("l2_category") or "",
                    rec["split"],
                ]
            )
