"""TextVQA: the VQA accuracy metric (answer normalisation and the 10 leave-one-out subsets)."""
from __future__ import annotations

import re

CONTRACTIONS = {"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
                "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't",
                "havent": "haven't", "hes": "he's", "im": "i'm", "ive": "i've", "isnt": "isn't", "itd": "it'd",
                "itll": "it'll", "lets": "let's", "shouldnt": "shouldn't", "thats": "that's", "theres": "there's",
                "theyre": "they're", "theyve": "they've", "wasnt": "wasn't", "werent": "weren't", "whats": "what's",
                "wont": "won't", "wouldnt": "wouldn't", "youre": "you're", "youve": "you've", "shes": "she's"}
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
           "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def _punctuation(text: str) -> str:
    out = text
    for p in PUNCT:
        if (p + " " in text or " " + p in text) or re.search(COMMA_STRIP, text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out)


def _digits_articles(text: str) -> str:
    words = []
    for w in text.lower().split():
        w = NUMBERS.get(w, w)
        if w not in ARTICLES:
            words.append(CONTRACTIONS.get(w, w))
    return " ".join(words)


def normalize(answer: str) -> str:
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    return _digits_articles(_punctuation(text))


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Mean over the leave-one-out subsets of min(1, matches among the others / 3)."""
    if not answers:
        return 0.0
    pred = normalize(prediction)
    gts = [normalize(a) for a in answers]
    accs = []
    for i in range(len(gts)):
        others = gts[:i] + gts[i + 1:]
        accs.append(min(1.0, sum(g == pred for g in others) / 3))
    return sum(accs) / len(accs)


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    rows = []
    for rec, out in zip(records, outputs):
        pred = out.strip().split("\n")[0]
        rows.append({"parsed": normalize(pred), "resolved": bool(pred.strip()),
                     "score": vqa_accuracy(pred, rec["answer"]["all"])})
    scores = [r["score"] for r in rows]
    return rows, {"protocol": "vqa_accuracy", "accuracy": sum(scores) / len(scores) if scores else 0.0,
                  "questions": len(rows)}
