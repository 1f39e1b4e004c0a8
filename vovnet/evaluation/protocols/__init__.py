"""One module per benchmark protocol; each exposes `score_records(records, outputs, seed) -> (rows, summary)`.

rows: one per record, {"parsed", "resolved", "score" in [0, 1]}. A protocol may name meta fields in
`BREAKDOWNS` for the report's per-field accuracies. Questions (CircularEval groups) are formed by the
evaluation core, the same way for every protocol. `score` strips Thinking-model reasoning first.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from vovnet.config import PROTOCOLS  # the schema's allowed `protocol` values; one module here per name

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def get_protocol(name: str) -> ModuleType:
    if name not in PROTOCOLS:
        from vovnet import VovnetError

        raise VovnetError(f"params.yaml: unknown evaluation protocol {name!r} (known: {', '.join(PROTOCOLS)})")
    return importlib.import_module(f"vovnet.evaluation.protocols.{name}")


def strip_thinking(output: str) -> str:
    """The answer after a Thinking model's reasoning: the text after the last `</think>`. Reasoning that
    never closed (cut by max_new_tokens) holds no answer: ''. Qwen3 Thinking templates open `<think>` in
    the prompt, so an output may carry the closing tag only."""
    if THINK_CLOSE in output:
        return output.rsplit(THINK_CLOSE, 1)[1].strip()
    if THINK_OPEN in output:
        return ""
    return output


def score(protocol: ModuleType, records: list[dict], outputs: list[str], seed: int) -> tuple[list[dict], dict]:
    return protocol.score_records(records, [strip_thinking(o) for o in outputs], seed)
