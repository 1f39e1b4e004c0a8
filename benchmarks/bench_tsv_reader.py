"""The TSV reader (structure checks: field counts, runaway quotes) vs Python's csv module reading the same
file with no checks, on MMBench-shaped TSVs written both ways VLMEvalKit has written them (QUOTE_MINIMAL,
QUOTE_ALL). Best of `--repeats` runs each.

    python benchmarks/bench_tsv_reader.py --rows 3000
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

from vovnet.data.mmbench_layout import TSV_COLUMNS
from vovnet.data.tsv import read_tsv

csv.field_size_limit(sys.maxsize)

COLUMNS = list(TSV_COLUMNS)


def write(path: Path, rows: int, quoting: int) -> None:
    import base64

    image = base64.b64encode(os.urandom(40_000)).decode()  # ~53 KB cells, like MMBench's base64 JPEGs
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", quoting=quoting, lineterminator="\n")
        w.writerow(COLUMNS)
        for i in range(rows):
            question = f'Which "option" fits?\nLine two {i}' if i % 5 == 0 else f"Question {i}?"
            w.writerow([i, question, "", "a", "b", "c", "d", "A", "cat", image, "s", "l2", "", "dev"])


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def plain_csv(path: Path) -> int:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return sum(1 for _ in csv.reader(fh, delimiter="\t")) - 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'quoting':<14}{'rows':>7}{'csv module (s)':>16}{'read_tsv (s)':>14}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, quoting in (("QUOTE_MINIMAL", csv.QUOTE_MINIMAL), ("QUOTE_ALL", csv.QUOTE_ALL)):
            path = Path(tmp) / f"{name}.tsv"
            write(path, args.rows, quoting)
            assert plain_csv(path) == sum(1 for _ in read_tsv(path)) == args.rows
            floor = best(lambda: plain_csv(path), args.repeats)
            ours = best(lambda: sum(1 for _ in read_tsv(path)), args.repeats)
            print(f"{name:<14}{args.rows:>7}{floor:>16.3f}{ours:>14.3f}{ours / floor:>8.2f}")


if __name__ == "__main__":
    main()
