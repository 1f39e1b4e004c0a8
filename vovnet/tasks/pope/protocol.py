"""POPE: VLMEvalKit's yes/no extraction (no LLM judge) and `POPE_rating`, plus POPE's yes-ratio.

Follows open-compass/VLMEvalKit at commit e8e78f05 (2026-08-18): `ImageYORNDataset.evaluate` in
vlmeval/dataset/image_yorn.py under `judge model = exact_matching`, `YOrN_Extraction` and `POPE_rating`
in vlmeval/dataset/utils/yorn.py, `process_punctuation` in vlmeval/smp/misc.py. Reimplemented:

1. the output is lowered and its punctuation processed: each of `; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`
   is deleted when it touches a space somewhere in the text (or the text has a digit-comma-digit), else
   replaced by a space; then periods not next to a digit are deleted (the first 32 only: the official call
   passes re.UNICODE where `sub` expects its count);
2. split into words: 'yes' without 'no' is Yes, 'no' without 'yes' is No, anything else Unknown (wrong);
3. a question scores 1 when the extraction equals the gold answer;
4. `POPE_rating`: over all rows and per `category` (a cell may list several, comma-separated; the row
   counts in each, and the overall figures count it once per listed category, as `explode` does):
   accuracy, and precision, recall and F1 of the answer Yes, where Unknown counts as a No; 0 for an
   empty denominator. VLMEvalKit reports these times 100; they stay in [0, 1] here.

The yes-ratio is POPE's own (RUCAIBox/POPE's evaluate.py: the share of answers read as yes), which
VLMEvalKit's rating omits; it is computed here from the same extraction.
"""

from __future__ import annotations

import re
from collections import defaultdict

from vovnet.evaluation.submission import write_answers

write_submission = write_answers  # POPE has no upload layout: id, question, prediction
BREAKDOWNS = ("category",)
PROMPTS = {}  # no Qwen variant (docs/evaluation.md)
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
DIGIT_COMMA = re.compile(r"\d,\d")
PERIOD = re.compile(r"(?<!\d)\.(?!\d)")
PERIOD_LIMIT = 32
YES, NO, UNKNOWN = "Yes", "No", "Unknown"


def process_punctuation(text: str) -> str:
    out = text
    digit_comma = DIGIT_COMMA.search(text) is not None
    for p in PUNCTUATION:
        if p + " " in text or " " + p in text or digit_comma:  # tested on the input, applied to the output
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD.sub("", out, count=PERIOD_LIMIT)


def extract_yes_no(output: str) -> str:
    words = process_punctuation(output.lower()).split()
    if "yes" in words and "no" not in words:
        return YES
    if "no" in words and "yes" not in words:
        return NO
    return UNKNOWN


def rating(golds: list[str], preds: list[str]) -> dict:
    """accuracy, precision, recall, F1 (of Yes) and yes-ratio of one group; golds/preds are Yes/No/Unknown."""
    tp = sum(g == YES and p == YES for g, p in zip(golds, preds))
    fp = sum(g != YES and p == YES for g, p in zip(golds, preds))
    fn = sum(g == YES and p != YES for g, p in zip(golds, preds))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(golds)
    return {
        "questions": n,
        "accuracy": sum(g == p for g, p in zip(golds, preds)) / n if n else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": sum(p == YES for p in preds) / n if n else None,
    }


def pope_figures(records: list[dict], preds: list[str]) -> dict:
    """`POPE_rating`'s table: overall and per category, rows exploded by their comma-separated categories."""
    golds, exploded, per = [], [], defaultdict(lambda: ([], []))
    for rec, pred in zip(records, preds):
        gold = YES if rec["answer"]["text"] == "yes" else NO
        cats = str(rec["meta"].get("category") or "").split(",") if rec["meta"].get("category") else [None]
        for cat in cats:
            golds.append(gold)
            exploded.append(pred)
            if cat is not None:
                per[cat][0].append(gold)
                per[cat][1].append(pred)
    return {"overall": rating(golds, exploded), "per_category": {c: rating(*gp) for c, gp in sorted(per.items())}}


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    """Per question: the extraction (Yes/No/Unknown), resolved, score 0/1; the summary is POPE_rating's table."""
    preds = [extract_yes_no(out) for out in outputs]
    rows = []
    for rec, pred in zip(records, preds):
        gold = rec["answer"]["text"]
        correct = gold is not None and pred.lower() == gold
        rows.append({"parsed": pred, "resolved": pred != UNKNOWN, "score": float(correct)})
    labelled = [(r, p) for r, p in zip(records, preds) if r["answer"]["text"] is not None]
    figures = pope_figures([r for r, _ in labelled], [p for _, p in labelled])
    return rows, {"protocol": "pope", **figures}
