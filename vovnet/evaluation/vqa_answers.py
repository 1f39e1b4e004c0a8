"""EvalAI's VQA answer processor, shared by TextVQA's protocol and the short-answer protocol.

Follows EvolvingLMMs-Lab/lmms-eval at commit 75571cfe (2026-08-06): `EvalAIAnswerProcessor` in
lmms_eval/tasks/_task_utils/vqa_eval_metric.py (itself EvalAI's / MMF's processor). Reimplemented:

1. word tokenize: lower-case, delete ',' and '?', split "'s" off as " 's", strip;
2. newlines and tabs to spaces;
3. punctuation: each of the listed marks is deleted when it touches a space somewhere in the text, else
   replaced by a space; then periods not followed by a digit are deleted (the first 32 only: the
   official call passes re.UNICODE where `sub` expects its count);
4. number words to digits, articles dropped, apostrophe-less contractions restored.
"""

from __future__ import annotations

import re

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
PERIOD = re.compile(r"\.(?!\d)")
PERIOD_LIMIT = 32  # re.UNICODE (== 32) lands in Pattern.sub's `count` in the official call
DIGIT_COMMA = re.compile(r"(?<=\d),+(?=\d)")  # only ever tested after commas are deleted: never matches
NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = {"a", "an", "the"}

# EvalAI's contraction table, written as its restored forms. Each key is a form with one apostrophe
# removed (with both removed for none of them); the irregular entries follow.
_RESTORED = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't he'd
he'd've he's how'd how'll how's I'd've I'm I've isn't it'd it'd've it'll ma'am mightn't mightn't've might've
mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't shouldn't've
somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's something'd something'd've
something'll that's there'd there'd've there're there's they'd they'd've they'll they're they've 'twas wasn't
we'd've we've weren't what'll what're what's what've when's where'd where's where've who'd who'd've who'll
who's who've why'll why're why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've
you'll you're you've
""".split()
_IRREGULAR = {"let's": "let's", "she's": "she's", "somebody'd": "somebodyd"}


def _contractions() -> dict[str, str]:
    table = {}
    for restored in _RESTORED:
        marks = [i for i, ch in enumerate(restored) if ch == "'"]
        for i in marks:
            table[restored[:i] + restored[i + 1 :]] = restored
    table.update(_IRREGULAR)
    return table


CONTRACTIONS = _contractions()


def _word_tokenize(text: str) -> str:
    return text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()


def _punctuation(text: str) -> str:
    out = text
    digit_comma = DIGIT_COMMA.search(text) is not None
    for p in PUNCTUATION:
        # the test looks at the input text, the replacement works on the running output
        if p + " " in text or " " + p in text or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD.sub("", out, count=PERIOD_LIMIT)


def _digits_articles(text: str) -> str:
    words = [NUMBERS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def normalize(answer: str) -> str:
    text = _word_tokenize(answer).replace("\n", " ").replace("\t", " ").strip()
    return _digits_articles(_punctuation(text))
