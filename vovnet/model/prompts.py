"""Prompts, rendered by the model's own chat template (the processor's `apply_chat_template`).

One user turn: the question text (hint, question, options, instruction) and, for vision actions, one
`{"type": "image"}` part per image; `model.prompt_order` places the images:
  image_first  `<|im_start|>user\\n<|vision_start|><|image_pad|><|vision_end|>{text}<|im_end|>\\n`
               `<|im_start|>assistant\\n` (Qwen3-VL's documented usage); the text-only prompt shares no
               prefix with the vision prompts;
  text_first   `<|im_start|>user\\n{text}<|vision_start|>...<|vision_end|>` then the same end: the text-only
               prompt `<|im_start|>user\\n{text}` is a prefix of every vision prompt, so its KV cache is reused.
A model directory without a chat template (models saved before templates) renders with the one the tiny and
demo models carry (vovnet/model/tiny.py): Qwen3-VL's structure, no system turn, no tools. The answer is never
in the prompt;
the training target is what the template writes for an assistant turn holding the answer (for a Thinking
template that includes its empty `<think>` block).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vovnet import VovnetError
from vovnet.data.records import LETTERS
from vovnet.model.tiny import CHAT_TEMPLATE as TEMPLATE

PROMPT_ORDERS = ("image_first", "text_first")
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


def messages(rec: dict, n_images: int, order: str, text_of: Callable[[dict], str] = question_text) -> list[dict]:
    """The user turn: the question text (`text_of`: an evaluation set's prompt variant) and `n_images` image
    parts, in `order`."""
    if order not in PROMPT_ORDERS:
        raise VovnetError(f"params.yaml: model.prompt_order: expected one of {', '.join(PROMPT_ORDERS)}, got {order!r}")
    text = [{"type": "text", "text": text_of(rec)}]
    images = [{"type": "image"}] * n_images
    return [{"role": "user", "content": images + text if order == "image_first" else text + images}]


@dataclass(frozen=True)
class Renderer:
    """Prompt strings for one model: its processor and the chat template it renders with."""

    processor: object
    template: str
    order: str
    text_of: Callable[[dict], str] = question_text  # the user turn's text (an evaluation set's prompt variant)

    @classmethod
    def of(
        cls, processor, order: str, template: str | None = None, text_of: Callable[[dict], str] | None = None
    ) -> "Renderer":
        """`template`: another model's template (the Thinking model's for FULL); default: the processor's own,
        or TEMPLATE when the model directory carries none. `text_of`: default question_text."""
        template = template or getattr(processor, "chat_template", None) or TEMPLATE
        return cls(processor, template, order, text_of or question_text)

    def _render(self, conversation: list[dict], generation_prompt: bool) -> str:
        return self.processor.apply_chat_template(
            conversation, chat_template=self.template, tokenize=False, add_generation_prompt=generation_prompt
        )

    def prompt(self, rec: dict, image_tokens: list[int]) -> str:
        """The full prompt; `image_tokens` holds each image's vision-token count (empty: text only)."""
        text = self._render(messages(rec, len(image_tokens), self.order, self.text_of), True)
        slots = text.split(IMAGE_PAD)
        if len(slots) != len(image_tokens) + 1:
            raise VovnetError(
                f"record {rec['id']}: the chat template wrote {len(slots) - 1} image slots for "
                f"{len(image_tokens)} images"
            )
        return slots[0] + "".join(IMAGE_PAD * n + rest for n, rest in zip(image_tokens, slots[1:]))

    def shared_prefix(self, rec: dict) -> str | None:
        """text_first: the text-only prompt up to the end of the question text, which every action's prompt
        starts with (its KV cache is reused); image_first: None (each vision prompt is prefilled whole)."""
        if self.order != "text_first":
            return None
        text_only, text = self.prompt(rec, []), self.text_of(rec)
        prefix = text_only[: text_only.index(text) + len(text)]
        if not self.prompt(rec, [1]).startswith(prefix):
            raise VovnetError(
                "model.prompt_order: text_first: this chat template does not put the images after "
                "the question text; use image_first"
            )
        return prefix

    def target(self, rec: dict) -> str | None:
        """The assistant turn's text after the prompt, as the template writes it for the answer (the
        option letter or the canonical answer), ending with the end-of-turn token; None: no answer."""
        answer = target(rec)
        if answer is None:
            return None
        conversation = messages(rec, 0, self.order, self.text_of)
        prompt = self._render(conversation, True)
        turn = self._render(conversation + [{"role": "assistant", "content": answer}], False)
        if not turn.startswith(prompt) or END not in turn[len(prompt) :]:
            raise VovnetError(
                "the chat template's assistant turn does not extend its generation prompt; "
                "cannot place the training target"
            )
        return turn[len(prompt) :].rsplit(END, 1)[0] + END


def target(rec: dict) -> str | None:
    """Multiple choice: the option letter; open: the canonical answer."""
    ans = rec["answer"]
    if rec.get("choices") and ans.get("label") is not None:
        return LETTERS[ans["label"]]
    return ans.get("text")
