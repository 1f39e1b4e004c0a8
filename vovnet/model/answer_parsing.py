"""Multiple-choice answer parsing: which option letter a generated answer gives (exact matching, no judge).

Evaluation scores with it and inference reports it, so it lives below both."""
from __future__ import annotations

import re

from vovnet.data.records import LETTERS

STRIP = ".()[],:;!*#{}"
LAST_WORDS = 5


def extract_choice(output: str, choices: list[str]) -> str | None:
    """The option letter the output gives, or None when it cannot be resolved."""
    letters = list(LETTERS[: len(choices)])
    text = output
    for ch in STRIP:
        text = text.replace(ch, " ")
    words = text.split()
    present = [x for x in letters if x in words]
    if len(present) == 1:
        last = max(i for i, w in enumerate(words) if w == present[0])
        if last >= len(words) - LAST_WORDS:
            return present[0]
    m = re.search(r"answer is\s*\(?([A-Z])\b", output, flags=re.IGNORECASE)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    lowered = output.lower()
    hits = [letters[i] for i, c in enumerate(choices) if c and c.lower() in lowered]
    if len(hits) == 1:
        return hits[0]
    return None
