"""The MMBench-Lite sample: a subset of the MMBench sample's dev file (its non-circular originals with an
even index), as the real Lite set is drawn from MMBench dev."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from vovnet.data.samples import write_tsv
from vovnet.tasks.mmbench.sample import MMBENCH_COLUMNS

ORDER = 1  # after mmbench: it reads mmbench's sample
CIRCULAR = 1_000_000


def make_sample(out: Path, rng: random.Random, seed: int) -> None:
    with open(out.parent / "mmbench" / "MMBench_DEV_EN.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    originals = {int(r["index"]): r for r in rows if int(r["index"]) < CIRCULAR}
    write_tsv(out / "mmbench_lite.tsv", [originals[i] for i in sorted(originals) if i % 2 == 0], MMBENCH_COLUMNS)
