"""Evaluation outputs against issue 13's figures, in a repository where `dvc repro` has run:
headline keys per eval/<set>/metrics.json and per baseline row (target <= 25), the widest line of
`dvc metrics show` and of `python -m vovnet exps` (target <= 160 columns), golden cases per protocol
(target >= 60), and whether the offline PNGs exist, are PNGs and reference no http(s) script.

    python benchmarks/probes/bench_eval_outputs.py     # in the repository root, after `dvc repro`

Golden cases are counted from pytest's collection of tests/test_golden_scorers.py (one test per case).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "COLUMNS": "160"}


def widest(cmd: list[str]) -> int:
    out = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=True).stdout
    return max((len(line) for line in out.splitlines()), default=0)


def golden_cases() -> Counter:
    """Golden cases per protocol: the parametrised tests of tests/test_golden_scorers.py, by name."""
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_golden_scorers.py"]
    out = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=True).stdout
    prefixes = {"mmbench": "test_mmbench_", "mmmu": "test_mmmu_", "textvqa": "test_textvqa_"}
    tests = [line.split("::", 1)[1] for line in out.splitlines() if "::" in line and "[" in line]
    return Counter({name: sum(t.startswith(p) for t in tests) for name, p in prefixes.items()})


def main() -> None:
    from vovnet.evaluation.report import flat_keys

    metrics = sorted(ROOT.glob("eval/*/metrics.json"))
    print(f"{'figure':<52} {'measured':>10} {'target':>8}")
    for path in metrics:
        n = len(flat_keys(json.loads(path.read_text())))
        rows = [len(flat_keys(json.loads(b.read_text()))) for b in sorted(path.parent.glob("baselines/*.json"))]
        print(f"{'headline keys ' + str(path.relative_to(ROOT)):<52} {n:>10} {'<= 25':>8}")
        print(
            f"{'  baseline rows, most keys (' + str(len(rows)) + ' rows)':<52} {max(rows, default=0):>10} {'<= 25':>8}"
        )
    print(f"{'dvc metrics show, widest line':<52} {widest(['dvc', 'metrics', 'show']):>10} {'<= 160':>8}")
    print(
        f"{'python -m vovnet exps, widest line':<52} {widest([sys.executable, '-m', 'vovnet', 'exps']):>10} {'<= 160':>8}"
    )
    for name, n in golden_cases().items():
        print(f"{'golden cases ' + name:<52} {n:>10} {'>= 60':>8}")
    for png in sorted([*ROOT.glob("eval/*/pareto.png"), ROOT / "plots" / "training.png"]):
        data = png.read_bytes() if png.exists() else b""
        ok = data[:8] == b"\x89PNG\r\n\x1a\n" and b"http" not in data
        print(f"{'offline PNG ' + str(png.relative_to(ROOT)):<52} {len(data):>10} {'ok' if ok else 'MISSING':>8}")


if __name__ == "__main__":
    main()
