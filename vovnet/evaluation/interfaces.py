"""What the evaluation core calls in a task's protocol.py, as a typing.Protocol class: a protocol module
satisfies it by defining these names at module level; vovnet/registry.py checks them when a stage loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol


class EvalProtocol(Protocol):
    """protocol.py: the benchmark's official scoring, and its upload file."""

    BREAKDOWNS: tuple[str, ...]  # meta fields the report breaks accuracy down by
    # prompt variants beside the standard one (evaluation.sets.<name>.prompt): name -> the user turn's text of
    # a record (vovnet/evaluation/prompt_variants.py); {} where the benchmark offers none
    PROMPTS: dict[str, Callable[[dict], str]]

    def score_records(self, records: list[dict], outputs: list[str], seed: int) -> tuple[list[dict], dict]:
        """One row per record {"parsed", "resolved", "score" in [0, 1]}, and a summary."""

    def write_submission(self, path: Path, records: list[dict], outputs: list[str]) -> None:
        """The file the benchmark's leaderboard takes (eval/<set>/submission.tsv), written atomically."""
