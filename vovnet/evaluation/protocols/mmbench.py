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

import re

from vovnet.data.records import LETTERS

BREAKDOWNS = ("category", "l2_category")
REFUSALS = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
            "I'm sorry, but without the image provided", "Cannot determine the answer")
API_FAILURE = "Failed to obtain answer via API"  # VLMEvalKit skips the letter rule for it (text rule still runs)
SEPARATORS = ".()[],:;!*#{}"
REJECT = "Z"
_SEPARATOR_TABLE = str.maketrans({c: " " for c in SEPARATORS})
_ANSWER_IS = re.compile(r"(?:correct\s+)?answer\s+is\s+\**([abcd])\**", re.IGNORECASE)


def _letter_rule(output: str, letters: list[str]) -> str | None:
    if API_FAILURE in output:
        return None
    if any(phrase in output for phrase in REFUSALS):
        return REJECT
    words = output.translate(_SEPARATOR_TABLE).split()
    present = [x for x in letters if x in words]
    if len(present) == 1:
        if words.index(present[0]) > len(words) - 5:
            return present[0]
    elif not present and REJECT in words:
        return REJECT
    m = _ANSWER_IS.search(output)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    return None


def _text_rule(output: str, choices: list[str]) -> str | None:
    lowered = output.lower()
    if len(lowered) > 2 * sum(len(c) for c in choices):
        return None
    hits = [LETTERS[i] for i, c in enumerate(choices) if c.lower() in lowered]
    return hits[0] if len(hits) == 1 else None


def match_option(output: str, choices: list[str]) -> str | None:
    """The option letter, 'Z' for a refusal, or None when exact matching cannot resolve the output."""
    return _letter_rule(output, list(LETTERS[: len(choices)])) or _text_rule(output, choices)


def extract_choice(output: str, choices: list[str]) -> str | None:
    """The option letter the output gives, or None (unresolved or a refusal)."""
    letter = match_option(output, choices)
    return None if letter == REJECT else letter


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
