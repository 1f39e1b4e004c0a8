"""MMStar: VLMEvalKit's exact matching (no LLM judge), vanilla (one pass per question, no CircularEval).

Follows open-compass/VLMEvalKit at commit e8e78f05 (2026-08-18): `ImageMCQDataset.evaluate_heuristic` in
vlmeval/dataset/image_mcq.py runs `mcq_vanilla_eval` (vlmeval/dataset/utils/multiple_choice.py) for MMStar,
whose name matches none of the circular datasets ('mmbench', 'ccbench', 'circular', 'mmcr'). Under
`judge model = exact_matching` each prediction goes through `can_infer` (vlmeval/utils/matching_util.py)
with the item's options A, B, ...; an output it cannot resolve becomes 'Z', and a question scores 1 only
when the letter equals the gold answer. The rules of `can_infer` (refusals, the option letter among the
last four words, "answer is X", the option text) are the ones MMBench scores with; they are implemented
once, in vovnet/model/answer_parsing.py, and described in vovnet/tasks/mmbench/protocol.py.

`report_acc` then gives the overall accuracy and one per `category` and `l2-category`: the report's
breakdowns by the record fields `category` and `l2_category`.
"""

from __future__ import annotations

from vovnet.data.records import LETTERS
from vovnet.evaluation import prompt_variants
from vovnet.evaluation.submission import write_answers
from vovnet.model.answer_parsing import REJECT, match_option

write_submission = write_answers  # VLMEvalKit scores its own prediction file: id, question, prediction
BREAKDOWNS = ("category", "l2_category")
# the prompts Qwen3-VL's reported scores were made with (docs/evaluation.md)
PROMPTS = {"qwen": prompt_variants.qwen, "lmms_eval_qwen": prompt_variants.lmms_eval_mmstar}


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    """Per question: parsed letter ('Z' refusal / None unresolved, both wrong), resolved, score 0/1."""
    rows = []
    for rec, out in zip(records, outputs):
        letter = match_option(out, rec["choices"])
        gold = rec["answer"]["label"]
        correct = letter not in (None, REJECT) and gold is not None and LETTERS.index(letter) == gold
        rows.append({"parsed": letter, "resolved": letter not in (None, REJECT), "score": float(correct)})
    return rows, {"protocol": "mmstar"}
