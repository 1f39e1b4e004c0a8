"""A killed evaluation resumed from its generation logs, against an uninterrupted run (a CPU pipeline: the sample or the demo).

Copies the working tree (the files git does not ignore) to a temporary folder and runs the sample pipeline
there (`dvc repro`).
Then, on one evaluation set through the launcher as dvc.yaml runs it (`python -m vovnet.launch
stages/evaluate.py`), one process, batch size 1 so that a kill lands between many batches:
  1. a full run with an empty generation log: its wall time;
  2. the same run again on that now complete log: it generates nothing, so its time is the fixed cost
     (loading the model and records, scoring, baselines, writing);
  3. a run on a fresh log, SIGKILLed (launcher and worker) at --kill-at (0.75) of the full run's time;
  4. the rerun on that log: the records it generated (those not yet logged, counted from the logs), its
     time against the full run's, and whether its outputs are byte-identical to the full run's.
Last, on the pipeline, `dvc exp run -S policy.cost_shift=0.5`: the stages it ran (no train) and the batches
they generated (none: the choice is re-read from the logged scores), and its wall time.

    OMP_NUM_THREADS=1 python benchmarks/bench_eval_resume.py [--set mmbench] [--kill-at 0.75]
    OMP_NUM_THREADS=1 python benchmarks/bench_eval_resume.py --preset demo --set demo   # the demo, ~10 min
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from vovnet.evaluation.generation_log import SETTINGS_FILE, read_log

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1", "VOVNET_LOG_LEVEL": "INFO"}
OUTPUTS = ("predictions.jsonl", "submission.tsv", "report.json", "metrics.json", "pareto.json")
GENERATED = re.compile(r"generated (\d+) batch\(es\), reused (\d+)")


def run(cwd: Path, *cmd: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"bench_eval_resume: `{' '.join(cmd)}` failed:\n{(p.stdout + p.stderr)[-3000:]}")
    return time.perf_counter() - t0, p.stdout + p.stderr


def copy_repository(dst: Path) -> None:
    """The working tree's files that git does not ignore (tracked or not: the code as it is), committed in a
    repository of its own."""
    cmd = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        run(dst, *cmd)


def params_file(work: Path, log_dir: str) -> str:
    y = YAML()
    d = y.load((work / "params.yaml").read_text())
    d["evaluation"].update(batch_size=1, generation_log=log_dir)
    d["launch"]["processes"] = 1
    name = f"params_{log_dir.replace('/', '_')}.yaml"
    with open(work / name, "w") as fh:
        y.dump(d, fh)
    return name


def evaluate_cmd(work: Path, set_name: str, log_dir: str, out: str) -> list[str]:
    params = params_file(work, log_dir)
    cmd = [sys.executable, "-m", "vovnet.launch", "stages/evaluate.py", "--set", set_name, "--params", params]
    return cmd + ["--out", out]


def logged(folder: Path) -> dict[str, int]:
    """Records in the logs under `folder`, per kind (answers, the policy split's entropies, the equal-token
    baselines' variants)."""
    out: dict[str, int] = {}
    for settings in folder.glob(f"*/*/{SETTINGS_FILE}"):
        kind = json.loads(settings.read_text()).get("kind", "?")
        out[kind] = out.get(kind, 0) + sum(
            len(e["ids"]) for f in settings.parent.glob("rank-*.jsonl") for e in read_log(f)[0]
        )
    return out


def killed_at(work: Path, cmd: list[str], seconds: float) -> float:
    """Start `cmd` and SIGKILL its process group (launcher and workers) after `seconds`."""
    proc = subprocess.Popen(
        cmd, cwd=work, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    t0 = time.perf_counter()
    try:
        proc.wait(timeout=seconds)
        sys.exit("bench_eval_resume: the run to kill ended before the kill point; lower --kill-at")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return time.perf_counter() - t0


def generated_batches(output: str) -> int:
    """The answer batches the processes say they generated (`generated N batch(es), reused M`)."""
    return sum(int(m.group(1)) for m in GENERATED.finditer(output))


def per_kind(after: dict[str, int], before: dict[str, int]) -> str:
    return ", ".join(f"{k} {after.get(k, 0) - before.get(k, 0)}" for k in sorted(after))


def resume(work: Path, set_name: str, kill_at: float) -> None:
    t_full, out_full = run(work, *evaluate_cmd(work, set_name, "bench_logs/full", "bench_eval/full"))
    total = logged(work / "bench_logs/full")
    t_fixed, out_fixed = run(work, *evaluate_cmd(work, set_name, "bench_logs/full", "bench_eval/fixed"))
    t_kill = killed_at(work, evaluate_cmd(work, set_name, "bench_logs/killed", "bench_eval/rerun"), kill_at * t_full)
    before = logged(work / "bench_logs/killed")
    t_rerun, out_rerun = run(work, *evaluate_cmd(work, set_name, "bench_logs/killed", "bench_eval/rerun"))
    after = logged(work / "bench_logs/killed")
    full, rerun = work / "bench_eval/full", work / "bench_eval/rerun"
    same = [f for f in OUTPUTS if (rerun / f).read_bytes() == (full / f).read_bytes()]
    print(f"evaluate@{set_name}, 1 process, batch size 1; records generated by kind (every action of a record")
    print(f"counts once): {per_kind(total, {})}")
    print(f"{'full run (empty log)':<48} {t_full:7.1f} s   answer batches generated {generated_batches(out_full)}")
    print(
        f"{'fixed cost: the same run on its complete log':<48} {t_fixed:7.1f} s   generated {per_kind(logged(work / 'bench_logs/full'), total)}"
    )
    print(f"{'  so generation in the full run':<48} {t_full - t_fixed:7.1f} s")
    print(f"{f'killed at {kill_at:.0%} of the full run':<48} {t_kill:7.1f} s   logged by then: {per_kind(before, {})}")
    print(f"{'rerun after the kill':<48} {t_rerun:7.1f} s   generated (not yet logged): {per_kind(after, before)}")
    print(f"{'  of which generation (rerun - fixed cost)':<48} {t_rerun - t_fixed:7.1f} s")
    print(f"{'rerun / full run':<48} {t_rerun / t_full:7.2f}x")
    twice = "generated twice (all runs' logs - a full run's)"
    print(f"{twice:<48} {per_kind(after, total)}")
    print(f"{'outputs byte-identical to the full run':<48} {len(same)}/{len(OUTPUTS)}")


def cost_shift_experiment(work: Path) -> None:
    logs = work / "checkpoints" / "generations"  # evaluation.generation_log of the pipeline's params
    before = logged(logs)
    t, out = run(work, "dvc", "exp", "run", "-S", "policy.cost_shift=0.5")
    stages = sorted(set(re.findall(r"Running stage '([^']+)'", out)))
    print(f"{'dvc exp run -S policy.cost_shift=0.5':<48} {t:7.1f} s")
    print(f"{'  stages run':<48} {', '.join(s for s in stages if not s.startswith('download@'))}")
    print(f"{'  train run':<48} {'yes' if 'train' in stages else 'no'}")
    print(f"{'  records generated':<48} {per_kind(logged(logs), before)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", default="mmbench", help="the evaluation set to kill and resume")
    ap.add_argument("--kill-at", type=float, default=0.75, help="the kill point, a share of the full run's time")
    ap.add_argument("--preset", default="sample", help="the pipeline to build first, e.g. demo (--set demo)")
    args = ap.parse_args()
    if not 0 < args.kill_at < 1:
        sys.exit(f"bench_eval_resume: --kill-at must be between 0 and 1, got {args.kill_at}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "vovnet"
        copy_repository(work)
        run(work, sys.executable, "-m", "vovnet", "preset", args.preset)
        t_repro, _ = run(work, "dvc", "repro")
        print(f"{'setup: dvc repro of the ' + args.preset + ' pipeline':<52} {t_repro:8.1f} s")
        resume(work, args.set, args.kill_at)
        cost_shift_experiment(work)


if __name__ == "__main__":
    main()
