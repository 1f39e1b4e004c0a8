"""The submission file of a benchmark without an upload layout of its own: id, question, prediction.

A protocol whose leaderboard takes another layout writes it in its own `write_submission`
(vovnet/tasks/mmbench/protocol.py); the others use this one.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vovnet.io_utils import atomic_path


def write_answers(path: Path, records: list[dict], outputs: list[str]) -> None:
    """One row per record in id order: its source id, the question and the raw answer."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "question", "prediction"])
        for rec, out in sorted(zip(records, outputs), key=lambda t: t[0]["id"]):
            w.writerow([rec["meta"].get("source_id", rec["id"]), rec["question"], out])
