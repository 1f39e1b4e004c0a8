"""Evaluation outputs against issue 13's figures, in a repository where `dvc repro` has run:
headline keys per eval/<set>/metrics.json and per baseline row (target <= 25), the widest line of
`dvc metrics show` and of `python -m vovnet exps` (target <= 160 columns), golden cases per protocol
(target >= 60), and whether the offline PNGs exist, are PNGs and reference no http(s) script.

    python benchmarks/bench_eval_outputs.py            # in the repository root, after `dvc repro`
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "COLUMNS": "160"}


def widest(cmd: list[str]) -> int:
    out = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=True).stdout
    return max((len(line) for line in out.splitlines()), default=0)


def main() -> None:
    from test_golden_scorers import MMBENCH, MMMU_CHOICE, MMMU_OPEN, TEXTVQA

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
    for name, n in (("mmbench", len(MMBENCH)), ("mmmu", len(MMMU_CHOICE) + len(MMMU_OPEN)), ("textvqa", len(TEXTVQA))):
        print(f"{'golden cases ' + name:<52} {n:>10} {'>= 60':>8}")
    for png in sorted([*ROOT.glob("eval/*/pareto.png"), ROOT / "plots" / "training.png"]):
        data = png.read_bytes() if png.exists() else b""
        ok = data[:8] == b"\x89PNG\r\n\x1a\n" and b"http" not in data
        print(f"{'offline PNG ' + str(png.relative_to(ROOT)):<52} {len(data):>10} {'ok' if ok else 'MISSING':>8}")


if __name__ == "__main__":
    main()
