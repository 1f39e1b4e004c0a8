"""TextVQA: VQA accuracy with the EvalAI answer processor, as lmms-eval scores it (no LLM judge).

Follows EvolvingLMMs-Lab/lmms-eval at commit 75571cfe (2026-08-06): `textvqa_process_results` in
lmms_eval/tasks/textvqa/utils.py; the answer processor is vovnet/evaluation/vqa_answers.py.

The whole reply is scored (not its first line). The reply and each of the ten answers are processed the
same way; accuracy is the mean over the ten leave-one-out subsets of min(1, matches / 3).
"""

from __future__ import annotations

import statistics

from vovnet.evaluation.submission import write_answers
from vovnet.evaluation.vqa_answers import normalize

__all__ = ["BREAKDOWNS", "PROMPTS", "normalize", "score_records", "vqa_accuracy", "write_submission"]
write_submission = write_answers  # no upload layout of its own: id, question, prediction
BREAKDOWNS: tuple[str, ...] = ()
PROMPTS: dict = {}  # no Qwen variant (docs/evaluation.md)


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Mean over the leave-one-out subsets of min(1, matches among the others / 3)."""
    if not answers:
        return 0.0
    pred = normalize(prediction)
    gts = [normalize(a) for a in answers]
    return statistics.mean(min(1.0, sum(g == pred for g in gts[:i] + gts[i + 1 :]) / 3) for i in range(len(gts)))


def score_records(records: list[dict], outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    rows = [
        {"parsed": normalize(out), "resolved": bool(out.strip()), "score": vqa_accuracy(out, rec["answer"]["all"])}
        for rec, out in zip(records, outputs)
    ]
    return rows, {"protocol": "textvqa"}
