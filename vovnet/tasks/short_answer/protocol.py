"""Short answers: exact match after VQA answer normalisation against any reference.

For LLaVA-style, custom and generated (demo) sets, which carry one or a few references per question;
TextVQA's 10-answer formula (min(1, matches/3)) would score a single reference at most 1/3 and usually 0.
The first line of the output is the prediction. A multiple-choice record also accepts its correct option,
given as the letter or as the option's text.
"""

from __future__ import annotations

import re
from collections import defaultdict

from vovnet.data.records import LETTERS
from vovnet.evaluation.submission import write_answers
from vovnet.evaluation.vqa_answers import normalize

write_submission = write_answers  # no upload layout of its own: id, question, prediction
BREAKDOWNS = ("family", "format")  # the generated demo set's question family and answer format
PROMPTS: dict = {}  # no Qwen variant: custom and generated sets


def references(rec: dict) -> set[str]:
    ans = rec["answer"]
    refs = [a for a in ans.get("all") or [] if a]
    if ans.get("text"):
        refs.append(ans["text"])
    if rec.get("choices") and ans.get("label") is not None:
        refs.append(rec["choices"][ans["label"]])  # the letter itself is matched before normalisation
    return {normalize(r) for r in refs} - {""}


def _letter(text: str) -> str | None:
    """A bare option letter ("B", "(B)", "B."): VQA normalisation would drop "a" as an article."""
    m = re.fullmatch(r"\(?([A-Za-z])[.)]?", text.strip())
    return m.group(1).upper() if m else None


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    rows = []
    per_family: dict[str, list[float]] = defaultdict(list)
    for rec, out in zip(records, outputs):
        lines = out.strip().split("\n")
        letter = _letter(lines[0]) if rec.get("choices") else None
        if letter is not None:
            label = rec["answer"].get("label")
            pred, score = letter, float(label is not None and letter == LETTERS[label])
        else:
            pred = normalize(lines[0])
            score = float(bool(pred) and pred in references(rec))
        rows.append({"parsed": pred, "resolved": bool(pred), "score": score})
        family = (rec.get("meta") or {}).get("family")
        if family is not None:
            per_family[family].append(score)
    summary = {
        "protocol": "short_answer_exact_match",
        "accuracy": sum(r["score"] for r in rows) / len(rows) if rows else 0.0,
        "questions": len(rows),
    }
    if per_family:
        summary["per_family"] = {k: sum(v) / len(v) for k, v in sorted(per_family.items())}
    return rows, summary
