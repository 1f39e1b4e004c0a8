"""ScienceQA-IMG: VLMEvalKit's exact matching (no LLM judge), vanilla (one pass per question).

Follows open-compass/VLMEvalKit at commit e8e78f05 (2026-08-18): ScienceQA_TEST is an `ImageMCQDataset`
(vlmeval/dataset/image_mcq.py) whose name matches none of the circular sets, so `evaluate_heuristic` runs
`mcq_vanilla_eval` (vlmeval/dataset/utils/multiple_choice.py); under `judge model = exact_matching` each
prediction goes through `can_infer` (vlmeval/utils/matching_util.py) with the item's options A, B, ...
(ScienceQA has two to five); an unresolved output becomes 'Z', and a question scores 1 only when the letter
equals the gold one. The matching rules are MMBench's (vovnet/model/answer_parsing.py, described in
vovnet/tasks/mmbench/protocol.py). Note that `can_infer`'s "answer is X" rule knows only A-D, so an E
is found by the letter and text rules alone, as officially. `report_acc` breaks accuracy down by
`category`; the report adds `subject` (natural, social, language science), as the ScienceQA paper does.
"""

from __future__ import annotations

from vovnet.data.records import LETTERS
from vovnet.evaluation import prompt_variants
from vovnet.evaluation.submission import write_answers
from vovnet.model.answer_parsing import REJECT, match_option

write_submission = write_answers  # VLMEvalKit scores its own prediction file: id, question, prediction
BREAKDOWNS = ("category", "subject")
PROMPTS = {"qwen": prompt_variants.qwen}  # Qwen3-VL's reported scores' prompts (docs/evaluation.md)


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    """Per question: parsed letter ('Z' refusal / None unresolved, both wrong), resolved, score 0/1."""
    rows = []
    for rec, out in zip(records, outputs):
        letter = match_option(out, rec["choices"])
        correct = letter not in (None, REJECT) and LETTERS.index(letter) == rec["answer"]["label"]
        rows.append({"parsed": letter, "resolved": letter not in (None, REJECT), "score": float(correct)})
    return rows, {"protocol": "scienceqa_img"}
