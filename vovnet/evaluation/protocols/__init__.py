"""One module per benchmark protocol; each exposes `score_records(records, outputs, seed) -> (rows, summary)`.

rows: one per record, {"parsed", "resolved", "score" in [0, 1]}. A protocol may name meta fields in
`BREAKDOWNS` for the report's per-field accuracies. Questions (CircularEval groups) are formed by the
evaluation core, the same way for every protocol. `score` strips the Thinking model's reasoning first
(vovnet/model/answer_parsing.py, which inference parses with too).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from vovnet.config import PROTOCOLS  # the schema's allowed `protocol` values; one module here per name
from vovnet.model.answer_parsing import answer_part, strip_thinking

__all__ = ["get_protocol", "score", "strip_thinking"]


def get_protocol(name: str) -> ModuleType:
    if name not in PROTOCOLS:
        from vovnet import VovnetError

        raise VovnetError(f"params.yaml: unknown evaluation protocol {name!r} (known: {', '.join(PROTOCOLS)})")
    return importlib.import_module(f"vovnet.evaluation.protocols.{name}")


def score(protocol: ModuleType, records: list[dict], outputs: list[str], seed: int,
          thinking: bool = False) -> tuple[list[dict], dict]:
    """`thinking`: the outputs are the Thinking model's (their reasoning is stripped before scoring)."""
    return protocol.score_records(records, [answer_part(o, thinking) for o in outputs], seed)
