"""MMMU: rule-based answer parsing as in the benchmark's own evaluation code (reimplemented).

Multiple choice: '(X)' candidates, then ' X ' tokens, then (outputs over 5 words) option text; several
candidates -> the one occurring last; none -> a seeded random option (also counted as unresolved).
Open: tails after indicator words, numbers extracted and normalised; any gold contained / equal -> correct.
"""
from __future__ import annotations

import random
import re
from collections import defaultdict

from vovnet.data.records import LETTERS

INDICATORS = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
NUMBER_PATTERNS = [r"-?\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b",            # 1,234.5
                   r"-?\d+(?:\.\d+)?[eE][+-]?\d+",                  # 1.2e-3
                   r"-?(?:\d+\.\d+|\.\d+|\d+)\b(?![eE][+-]?\d+)(?![,]\d)"]  # 12, 3.5


def parse_multi_choice(output: str, choices: list[str], rng: random.Random) -> tuple[str, bool]:
    """(letter, resolved)."""
    letters = list(LETTERS[: len(choices)])
    resp = output
    for ch in [",", ".", "!", "?", ";", ":", "'"]:
        resp = resp.strip(ch)
    resp = f" {resp} "
    cands = [x for x in letters if f"({x})" in resp]
    by_text = False
    if not cands:
        cands = [x for x in letters if f" {x} " in resp]
    if not cands and len(resp.split()) > 5:
        cands = [letters[i] for i, c in enumerate(choices) if c and c.lower() in resp.lower()]
        by_text = True
    if not cands:
        return rng.choice(letters), False
    if len(cands) == 1:
        return cands[0], True

    def last_pos(x: str) -> int:
        if by_text:
            return resp.lower().rfind(choices[letters.index(x)].lower())
        return max(resp.rfind(f"({x})"), resp.rfind(f" {x} "))

    return max(cands, key=last_pos), True


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def normalize(value: str):
    num = _number(value.strip())
    if num is not None:
        return round(num, 2)
    return value.strip().lower()


def extract_numbers(text: str) -> list[float]:
    found = []
    for pat in NUMBER_PATTERNS:  # most specific first; a matched span is blanked so it counts once
        for m in re.findall(pat, text):
            n = _number(m)
            if n is not None:
                found.append(round(n, 2))
        text = re.sub(pat, " ", text)
    return found


def parse_open(output: str) -> list:
    """Candidate predictions (floats rounded to 2 decimals and lowercased strings)."""
    text = output.strip().strip(".").lower()
    sentences = [s for s in re.split(r"\.\s(?=[a-z])|\n", text) if s.strip()] or [text]
    tails = []
    for i, sent in enumerate(sentences):
        inds = INDICATORS + (["="] if i == len(sentences) - 1 else [])
        shortest = None
        for ind in inds:
            if ind in sent:
                tail = sent.split(ind)[-1].strip()
                if tail and (shortest is None or len(tail) < len(shortest)):
                    shortest = tail
        if shortest and shortest not in (":", ",", ".", "!", "?", ";", "'"):
            tails.append(shortest)
    if not tails:
        tails = [text]
    preds: list = []
    for t in tails:
        preds.extend(extract_numbers(t))
    preds.extend(normalize(t) for t in tails)
    seen, out = set(), []
    for p in preds:
        if (type(p), p) not in seen:
            seen.add((type(p), p))
            out.append(p)
    return out


def eval_open(golds: list[str], preds: list) -> bool:
    norm_golds = [normalize(g) for g in golds]
    for g in norm_golds:
        for p in preds:
            if isinstance(g, str) and isinstance(p, str) and g in p:
                return True
            if isinstance(g, float) and isinstance(p, float) and g == p:
                return True
    return False


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    rng = random.Random(seed)
    rows = []
    per_subject: dict[str, list[float]] = defaultdict(list)
    for rec, out in zip(records, outputs):
        if rec.get("choices"):
            pred, resolved = parse_multi_choice(out, rec["choices"], rng)
            correct = rec["answer"]["label"] is not None and LETTERS.index(pred) == rec["answer"]["label"]
            rows.append({"parsed": pred, "resolved": resolved, "score": float(correct)})
        else:
            preds = parse_open(out)
            correct = eval_open(rec["answer"]["all"], preds)
            rows.append({"parsed": [p if isinstance(p, str) else float(p) for p in preds], "resolved": bool(out.strip()),
                         "score": float(correct)})
        per_subject[rec["meta"].get("subject") or "unknown"].append(rows[-1]["score"])
    scores = [r["score"] for r in rows]
    return rows, {"protocol": "mmmu", "accuracy": sum(scores) / len(scores) if scores else 0.0,
                  "questions": len(rows), "per_subject": {k: sum(v) / len(v) for k, v in sorted(per_subject.items())}}
