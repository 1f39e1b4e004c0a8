"""1 process against N through the launcher (`python -m vovnet.launch`), on the built pipeline.

Copies the working tree (outputs of `dvc repro` included) to a temporary folder, then trains and
evaluates there with launch.processes 1 and N (one torch thread per process). Prints the optimizer steps,
the largest relative difference of any stage metric, whether every evaluation output is byte-identical,
and each run's wall time (one run each: on a shared CPU the N-process runs are slower, not faster).

    OMP_NUM_THREADS=1 python benchmarks/bench_launch.py [--processes 2] [--set mmbench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
EVAL_FILES = ("predictions.jsonl", "submission.tsv", "report.json", "metrics.json", "pareto.json", "pareto.png")


def with_params(work: Path, processes: int, name: str) -> Path:
    y = YAML()
    d = y.load((work / "params.yaml").read_text())
    d["launch"]["processes"] = processes
    d["train"].update(cpu_threads=1, output_dir=f"models/{name}", checkpoint_dir=f"checkpoints/{name}")
    d["evaluation"].update(cpu_threads=1, model_dir="models/vovnet")  # both evaluate the same model
    path = work / f"params_{name}.yaml"
    with open(path, "w") as fh:
        y.dump(d, fh)
    return path


def timed(work: Path, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "vovnet.launch", *args],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"},
    )
    if p.returncode:
        sys.exit(f"bench_launch: {' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0, p.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--set", default="mmbench", help="the evaluation set to compare")
    args = ap.parse_args()
    if not (ROOT / "models" / "vovnet").exists():
        sys.exit("bench_launch: run `dvc repro` first (it needs models/vovnet and data/processed)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "vovnet"
        shutil.copytree(ROOT, work, symlinks=True, ignore=shutil.ignore_patterns(".git", "cache", "checkpoints"))
        runs = {}
        for n in (1, args.processes):
            params = with_params(work, n, f"p{n}")
            t_train, _ = timed(work, "stages/train.py", "--params", str(params), "--metrics", f"metrics/p{n}.json")
            t_eval, _ = timed(
                work, "stages/evaluate.py", "--params", str(params), "--set", args.set, "--out", f"eval_p{n}"
            )
            runs[n] = (json.loads((work / "metrics" / f"p{n}.json").read_text()), t_train, t_eval)
        (m1, t1, e1), (mn, tn, en) = runs[1], runs[args.processes]
        worst = max(
            abs(v - mn["stages"][s][k]) / max(abs(v), 1e-12)
            for s, figs in m1["stages"].items()
            for k, v in figs.items()
        )
        same = [
            f
            for f in EVAL_FILES
            if (work / "eval_p1" / f).read_bytes() == (work / f"eval_p{args.processes}" / f).read_bytes()
        ]
        base = sorted(p.name for p in (work / "eval_p1" / "baselines").iterdir())
        same_base = all(
            (work / "eval_p1" / "baselines" / b).read_bytes()
            == (work / f"eval_p{args.processes}" / "baselines" / b).read_bytes()
            for b in base
        )
    n = args.processes
    print(f"| figure | 1 process | {n} processes |")
    print("|---|---:|---:|")
    print(f"| optimizer steps | {m1['optimizer_steps']} | {mn['optimizer_steps']} |")
    print(
        f"| per-process batch x accumulation | {m1['per_process_batch']} x {m1['accumulation']} | "
        f"{mn['per_process_batch']} x {mn['accumulation']} |"
    )
    print(f"| train wall s (one run) | {t1:.1f} | {tn:.1f} |")
    print(f"| evaluate@{args.set} wall s (one run) | {e1:.1f} | {en:.1f} |")
    print(f"\nlargest relative difference of a stage metric: {worst:.1e}")
    print(
        f"evaluation outputs byte-identical: {len(same)}/{len(EVAL_FILES)} files"
        f"{' and every baselines/ file' if same_base else ', baselines/ DIFFER'}"
    )


if __name__ == "__main__":
    main()
