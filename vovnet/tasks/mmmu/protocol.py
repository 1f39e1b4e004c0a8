"""MMMU: the benchmark's own rule-based parsing and matching (no LLM judge), reimplemented.

Follows MMMU-Benchmark/MMMU mmmu/utils/eval_utils.py at commit bb0b95a9 (2025-05-19):
`parse_multi_choice_response`, `parse_open_response`, `normalize_str`, `extract_numbers`, `eval_open`.

Multiple choice: the output is stripped of `, . ! ? ; : '` (one character kind after another) and padded
with spaces; candidates are '(X)', else ' X ', else (outputs of more than 5 words) option texts. Several
candidates: the one whose last occurrence is latest, looked up in the form that found them (bracket,
bare letter, or text); ties go to the earlier option. No candidate: a random option, as officially, but
drawn from a generator seeded by (seed, record id) so that one question always gets the same draw under
every policy; such answers are counted as unresolved.

Open: the lowered output is split on newlines only (the official sentence split looks for capitals after
lowercasing, so it never fires); in each part the shortest tail after an indicator word ('=' too in the
last part) is kept; numbers are extracted with three independent patterns (with commas, scientific,
simple), so "1,234" yields both 1234 and 234; each candidate is normalised (numbers rounded to 2 decimals,
one-character strings padded to " x" and "x " so that they only match as a word edge). A string
candidate is right when it contains a normalised gold string; a number when it equals a gold number.
"""

from __future__ import annotations

import random
import re

from vovnet.data.records import LETTERS
from vovnet.evaluation import prompt_variants
from vovnet.evaluation.submission import write_answers

write_submission = write_answers  # no upload layout of its own: id, question, prediction
BREAKDOWNS = ("subject",)
# the prompts Qwen3-VL's reported scores were made with (docs/evaluation.md)
PROMPTS = {"qwen": prompt_variants.qwen, "lmms_eval_qwen": prompt_variants.lmms_eval_mmmu}
STRIP_CHARS = (",", ".", "!", "?", ";", ":", "'")
INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
TRIVIAL_TAILS = (":", ",", ".", "!", "?", ";", "'")
NUMBER_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
NUMBER_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
NUMBER_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def parse_multi_choice(output: str, choices: list[str]) -> str | None:
    """The chosen letter, or None when no candidate is found (the caller then draws one at random)."""
    letters = list(LETTERS[: len(choices)])
    resp = output
    for ch in STRIP_CHARS:
        resp = resp.strip(ch)
    resp = f" {resp} "
    forms = {x: f"({x})" for x in letters}
    cands = [x for x in letters if forms[x] in resp]
    haystack = resp
    if not cands:
        forms = {x: f" {x} " for x in letters}
        cands = [x for x in letters if forms[x] in resp]
    if not cands and len(resp.split()) > 5:
        haystack = resp.lower()
        forms = {x: c.lower() for x, c in zip(letters, choices)}
        cands = [x for x in letters if forms[x] in haystack]
    if not cands:
        return None
    positions = [haystack.rfind(forms[x]) for x in cands]
    return cands[positions.index(max(positions))]


def random_choice(choices: list[str], seed: int, record_id: str) -> str:
    return random.Random(f"{seed}:{record_id}").choice(list(LETTERS[: len(choices)]))


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def normalize(value: str) -> list:
    """[number rounded to 2 decimals] or [lowered string]; a one-character string becomes [" x", "x "]."""
    value = value.strip()
    number = _as_number(value)
    if number is not None:
        return [round(number, 2)]
    value = value.lower()
    return [f" {value}", f"{value} "] if len(value) == 1 else [value]


def extract_numbers(text: str) -> list[str]:
    return NUMBER_WITH_COMMAS.findall(text) + NUMBER_SCIENTIFIC.findall(text) + NUMBER_SIMPLE.findall(text)


def key_tails(output: str) -> list[str]:
    text = output.strip().strip(".").lower()
    parts = text.split("\n")
    tails = []
    for i, part in enumerate(parts):
        indicators = INDICATORS + (("=",) if i == len(parts) - 1 else ())
        shortest = None
        for ind in indicators:
            if ind in part:
                tail = part.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest not in TRIVIAL_TAILS:
            tails.append(shortest)
    return tails or [text]


def parse_open(output: str) -> list:
    """The normalised candidates (floats and strings), sorted for a stable record."""
    tails = key_tails(output)
    raw = tails + [n for t in tails for n in extract_numbers(t)]
    preds = {p for r in raw for p in normalize(r)}
    return sorted(preds, key=lambda p: (isinstance(p, str), str(p)))


def eval_open(golds: list[str], preds: list) -> bool:
    norm_golds = [g for gold in golds for g in normalize(gold)]
    for pred in preds:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in norm_golds):
                return True
        elif pred in norm_golds:
            return True
    return False


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    rows = []
    for rec, out in zip(records, outputs):
        if rec.get("choices"):
            letter = parse_multi_choice(out, rec["choices"])
            resolved = letter is not None
            if letter is None:
                letter = random_choice(rec["choices"], seed, rec["id"])
            correct = rec["answer"]["label"] is not None and LETTERS.index(letter) == rec["answer"]["label"]
            rows.append({"parsed": letter, "resolved": resolved, "score": float(correct)})
        else:
            preds = parse_open(out)
            rows.append(
                {"parsed": preds, "resolved": bool(out.strip()), "score": float(eval_open(rec["answer"]["all"], preds))}
            )
    return rows, {"protocol": "mmmu"}
