"""What the equal-token baselines add to an evaluation: `evaluate@<set>` with and without them, on a pipeline
that has run (`python -m vovnet preset demo_wide && dvc repro`, then this from the same folder).

Runs the stage script as dvc.yaml's one-process launch does (`python stages/evaluate.py --set S`), alternating
two params files built from params.yaml: `with` (as it is) and `without` (evaluation.resolution_sweep and
evaluation.pruning emptied). Each run writes to its own temporary folder and generation log, so nothing is
read back from an earlier run. Prints each run's seconds, the medians, the time the baselines add (absolute
and against the run without them), and per question the generations and vision tokens each side spent
(the actions' from the report, the baselines' counted from the `with` run's generation logs).

    OMP_NUM_THREADS=1 python benchmarks/bench_baselines.py --set demo_wide [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from vovnet.evaluation.generation_log import read_log

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}


def both_params() -> dict[str, dict]:
    """params.yaml as it is (`with`) and with the baselines emptied (`without`)."""
    params = YAML(typ="safe").load(Path("params.yaml").read_text(encoding="utf-8"))
    without = json.loads(json.dumps(params))
    without["evaluation"]["resolution_sweep"] = []
    without["evaluation"]["pruning"].update(methods=[], keep_shares=[], policy_then_prune=None)
    return {"with": params, "without": without}


def run(set_name: str, params: dict, folder: Path) -> float:
    """One evaluation in `folder`, on a fresh generation log there: its wall seconds."""
    evaluation = {**params["evaluation"], "generation_log": str(folder / "generations")}
    run_params = folder / "params.yaml"
    with open(run_params, "w", encoding="utf-8") as fh:
        YAML(typ="safe").dump({**params, "evaluation": evaluation}, fh)
    cmd = [sys.executable, "stages/evaluate.py", "--set", set_name, "--params", str(run_params)]
    t0 = time.perf_counter()
    done = subprocess.run([*cmd, "--out", str(folder / "eval")], env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"bench_baselines: `{' '.join(cmd)}` failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds


def spent(report: dict, logs: Path) -> tuple[int, float, int, float]:
    """Per question: (generations, vision tokens) of the actions (NO, COARSE, FULL), then of the baselines,
    counted from the `with` run's baseline logs (one folder per generated variant; a sweep budget equal to an
    action's, or a kept share of 1.0, reuses that action's answers and has none)."""
    base = report["baselines"]
    tokens = base["always_coarse"]["vision_tokens"] + base["always_full"]["vision_tokens"]
    variants = [d for d in logs.iterdir() if d.is_dir()]
    records = spent_tokens = 0
    for folder in variants:
        for f in folder.glob("*.jsonl"):
            for entry in read_log(f)[0]:
                records += len(entry["results"])
                spent_tokens += sum(r["vision_tokens"] for r in entry["results"])
    n = records / max(1, len(variants))
    return 3, tokens, len(variants), spent_tokens / max(1, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", required=True)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory(prefix="bench_baselines_") as tmp:
        params = both_params()
        for rep in range(args.reps):
            for name in ("without", "with"):
                folder = Path(tmp) / f"{name}_{rep}"
                folder.mkdir()
                times[name].append(run(args.set, params[name], folder))
                print(f"round {rep + 1}, {name:7} baselines: {times[name][-1]:.1f} s", flush=True)
        report = json.loads((Path(tmp) / "with_0" / "eval" / "report.json").read_text(encoding="utf-8"))
        gens, tokens, extra_gens, extra_tokens = spent(
            report, Path(tmp) / "with_0" / "generations" / f"{args.set}.baselines"
        )
    off, on = statistics.median(times["without"]), statistics.median(times["with"])
    print(f"\nevaluate@{args.set}, {report['questions']} questions, median of {args.reps}:")
    print(f"  without baselines {off:7.1f} s")
    print(f"  with baselines    {on:7.1f} s   +{on - off:.1f} s ({on / off:.2f}x)")
    print(f"  per question: actions {gens} generations, {tokens:.1f} vision tokens; baselines {extra_gens} more")
    print(f"  generations, {extra_tokens:.1f} more vision tokens ({extra_tokens / tokens:.2f}x the actions')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
