"""The question texts Qwen3-VL's reported scores were made with, which a task's protocol.py offers as prompt
variants (`PROMPTS`) and an evaluation set selects (`evaluation.sets.<name>.prompt`).

`standard` (the default) is the engine's own text (vovnet/model/prompts.py): hint, question, options and
LLaVA's instruction. The variants here replace only the user turn's text; the chat template, the image
placement (`model.prompt_order`) and the decoding settings stay the project's. Sources, read for facts:
- `qwen`: QwenLM/Qwen3-VL `evaluation/mmmu/run_mmmu.py` `build_mmmu_prompt` (commit 96588727), which is
  VLMEvalKit's `ImageMCQDataset.build_prompt` (vlmeval/dataset/image_mcq.py, commit e8e78f05) stripped of its
  trailing whitespace; VLMEvalKit's `Qwen3-VL-8B-Instruct` entry (vlmeval/config.py) sets
  `use_custom_prompt=False`, so this dataset prompt is the one it sends. Lines: `Hint: <hint>` (when there is
  one), `Question: <question>`, then for multiple choice `Options:`, one `<letter>. <option>` per option and
  `Please select the correct answer from the options above.`
- `lmms_eval_qwen`: lmms-eval's `mmmu_val_qwen` and `mmstar_qwen` tasks (commit 75571cfe; they follow
  VLMEvalKit's `Qwen3VLPromptMixin` custom prompt, vlmeval/vlm/qwen3_vl/prompt.py): pre-prompt `Question: `
  and post-prompt `Answer with the option letter only.`; MMMU with `format: qwen3_vl`
  (`mmmu_doc_to_text_qwen3vl`), MMStar with the hub's own question cell (`mmstar_doc_to_text`).
"""

from __future__ import annotations

from typing import Callable

from vovnet import VovnetError
from vovnet.data.records import LETTERS

STANDARD = "standard"
QWEN_MCQ = "Please select the correct answer from the options above."
LMMS_QWEN_MCQ = "Answer with the option letter only."
LMMS_QWEN_MMMU_OPEN = "Please answer the question directly."  # mmmu_val_qwen's open_ended_prompt
YES_NO = " Please answer yes or no."  # mmstar_doc_to_text removes it from the cell


def _options(rec: dict, sep: str) -> list[str]:
    return [f"{LETTERS[i]}{sep}{c}" for i, c in enumerate(rec.get("choices") or [])]


def qwen(rec: dict) -> str:
    """Qwen's own evaluation prompt (multiple choice; an open question keeps its question line only)."""
    lines = [f"Hint: {rec['hint']}"] if rec.get("hint") else []
    lines.append(f"Question: {rec['question']}")
    if rec.get("choices"):
        lines += ["Options:", *_options(rec, ". "), QWEN_MCQ]
    return "\n".join(lines).rstrip()


def lmms_eval_mmmu(rec: dict) -> str:
    """mmmu_val_qwen: the options block is written for open questions too (then empty)."""
    tail = LMMS_QWEN_MCQ if rec.get("choices") else LMMS_QWEN_MMMU_OPEN
    return f"Question: {rec['question']}\nOptions:\n" + "\n".join(_options(rec, ". ")) + f"\n{tail}"


def lmms_eval_mmstar(rec: dict) -> str:
    """mmstar_qwen: `Question: ` + the hub's question cell, stripped, + the post-prompt with no separator. The
    record holds the cell split into stem and options (vovnet/tasks/mmstar/adapter.py); it is rebuilt in the
    hub's layout, `<stem>\\nOptions: A: <text>, B: <text>, ...`."""
    cell = f"{rec['question']}\nOptions: " + ", ".join(_options(rec, ": "))
    return f"Question: {cell.strip().replace(YES_NO, '')}{LMMS_QWEN_MCQ}"


def question_text_of(protocol, variant: str, set_name: str) -> Callable[[dict], str] | None:
    """The question text a set's prompt variant renders (None: the standard one), from the protocol the stage
    handed down; a variant the protocol does not offer is one line."""
    if variant == STANDARD:
        return None
    offered = protocol.PROMPTS
    if variant not in offered:
        have = ", ".join([STANDARD, *sorted(offered)])
        raise VovnetError(
            f"evaluation.sets.{set_name}.prompt: {variant!r} is not offered by its protocol (offered: {have})"
        )
    return offered[variant]
