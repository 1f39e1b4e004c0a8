"""Prompt layout. The image comes after the question text, so the text-only prompt and the vision
prompts share the prefix `<|im_start|>user\n{text}`; the answer is never part of the prompt."""
from __future__ import annotations

from vovnet.data.records import LETTERS

IMAGE_SLOT = "<|vision_start|><|image_pad|><|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
END = "<|im_end|>"
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."


def question_text(rec: dict) -> str:
    parts = []
    if rec.get("hint"):
        parts.append(f"Hint: {rec['hint']}")
    parts.append(f"Question: {rec['question']}")
    if rec.get("choices"):
        parts.append("Options:\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(rec["choices"])))
        parts.append(MC_INSTRUCTION)
    else:
        parts.append(OPEN_INSTRUCTION)
    return "\n".join(parts)


def prompt_prefix(rec: dict) -> str:
    return "<|im_start|>user\n" + question_text(rec)


def prompt(rec: dict, image_tokens: list[int]) -> str:
    """The full prompt; `image_tokens` holds each image's vision-token count (empty: text only)."""
    slots = "".join(IMAGE_SLOT.replace(IMAGE_PAD, IMAGE_PAD * n) for n in image_tokens)
    return prompt_prefix(rec) + slots + END + "\n<|im_start|>assistant\n"


def target(rec: dict) -> str | None:
    """Multiple choice: the option letter; open: the canonical answer."""
    ans = rec["answer"]
    if rec.get("choices") and ans.get("label") is not None:
        return LETTERS[ans["label"]]
    return ans.get("text")
