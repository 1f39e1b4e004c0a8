"""Answer parsing shared by evaluation and inference, so both report the same letter for the same output:
the Thinking model's reasoning is stripped (`answer_part`), then multiple-choice outputs are matched with
VLMEvalKit's exact matching (no LLM judge), rule for rule.

The rules and the commit they follow are described in vovnet/tasks/mmbench/protocol.py, which
scores with them; inference reports the same parsed letter, so the parsing lives below both.
"""

from __future__ import annotations

import re

from vovnet.data.records import LETTERS

REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
API_FAILURE = "Failed to obtain answer via API"  # VLMEvalKit skips the letter rule for it (text rule still runs)
SEPARATORS = ".()[],:;!*#{}"
REJECT = "Z"
_SEPARATOR_TABLE = str.maketrans({c: " " for c in SEPARATORS})
_ANSWER_IS = re.compile(r"(?:correct\s+)?answer\s+is\s+\**([abcd])\**", re.IGNORECASE)
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def strip_thinking(output: str) -> str:
    """The answer after a Thinking model's reasoning: the text after the last `</think>`. Reasoning that
    never closed (cut by max_new_tokens) holds no answer: ''. Qwen3-VL-Thinking's chat template opens
    `<think>` in the prompt, so its output usually carries the closing tag only."""
    if THINK_CLOSE in output:
        return output.rsplit(THINK_CLOSE, 1)[1].strip()
    if THINK_OPEN in output:
        return ""
    return output


def answer_part(output: str, thinking: bool) -> str:
    """What is parsed of an output: the Thinking model's (`thinking`) without its reasoning; any other
    model's as it is (an Instruct model writes no reasoning block, and a `</think>` it writes is text)."""
    return strip_thinking(output) if thinking else output


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


def parse_choice(output: str, choices: list[str], thinking: bool) -> str | None:
    """The option letter of a raw model output (the Thinking model's when `thinking`), or None."""
    return extract_choice(answer_part(output, thinking), choices)
