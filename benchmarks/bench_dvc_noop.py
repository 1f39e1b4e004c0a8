"""What a no-op costs: `dvc status` and `dvc repro` with nothing changed, and each download@ stage's own
no-op check, in a fresh clone after `dvc repro` (or in an existing workspace with --repo).

    python benchmarks/bench_dvc_noop.py              # fresh copy of the repository, dvc repro first (minutes)
    python benchmarks/bench_dvc_noop.py --repo .     # this workspace, already reproduced

Wall and CPU seconds (user + system of the command and its children), median of --runs. The download@
stages are always_changed (dvc.yaml says why), so a no-op repro runs each one: its process (the stat-only
check, vovnet/data/noop_check.py) plus DVC's own bookkeeping for a stage that ran (it rewrites dvc.lock).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}


def timed(cwd: Path, *cmd: str) -> tuple[float, float, str]:
    """(wall s, cpu s, output) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1) or (p.returncode == 1 and cmd[:2] != ("dvc", "status")):
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), p.stdout + p.stderr


def median_of(runs: int, cwd: Path, *cmd: str) -> tuple[float, float, str]:
    results = [timed(cwd, *cmd) for _ in range(runs)]
    return (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results), results[-1][2])


def fresh_clone(tmp: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    repo = tmp / "vovnet"
    for f in filter(None, files):
        src = ROOT / f.decode()
        if src.is_file():
            (repo / f.decode()).parent.mkdir(parents=True, exist_ok=True)
            (repo / f.decode()).write_bytes(src.read_bytes())
    for cmd in (("git", "init", "-q"), ("git", "add", "-A"), ("git", "commit", "-qm", "copy")):
        subprocess.run(cmd, cwd=repo, env=ENV, check=True, capture_output=True)
    print("fresh copy: dvc repro ...", flush=True)
    subprocess.run(["dvc", "repro"], cwd=repo, env=ENV, check=True, capture_output=True)
    return repo


def measure(repo: Path, runs: int) -> None:
    from vovnet.config import read_yaml

    datasets = list(read_yaml(repo / "params.yaml")["datasets"])
    timed(repo, "dvc", "repro")  # settle: the first no-op after a full run writes the no-op signatures
    status = median_of(runs, repo, "dvc", "status")
    repro = median_of(runs, repo, "dvc", "repro")
    changed = [line for line in status[2].splitlines() if line.strip() == "always changed"]
    ran = [line for line in repro[2].splitlines() if line.startswith("Running stage")]
    downloads = {d: median_of(runs, repo, sys.executable, "stages/download.py", "--dataset", d) for d in datasets}
    python = median_of(runs, repo, sys.executable, "-c", "pass")
    per_stage = ((repro[0] - status[0]) / len(datasets), (repro[1] - status[1]) / len(datasets))
    print(f"\n{len(datasets)} datasets, median of {runs} | {'wall s':>7} {'cpu s':>7} | target")
    print(
        f"dvc status (no-op)                | {status[0]:7.2f} {status[1]:7.2f} | reports {len(changed)} "
        f"stages 'always changed' (the download@ stages), nothing else"
    )
    print(
        f"dvc repro (no-op)                 | {repro[0]:7.2f} {repro[1]:7.2f} | <= 3 s: "
        f"{'met' if repro[0] <= 3 else 'not met'} (ran {len(ran)} stages)"
    )
    for d, (wall, cpu, out) in downloads.items():
        quick = "stat check" if "nothing changed since the last check" in out else "FULL CHECK"
        print(
            f"  download@{d:<24}| {wall:7.2f} {cpu:7.2f} | <= 0.3 s: {'met' if wall <= 0.3 else 'not met'} "
            f"(wall), {'met' if cpu <= 0.3 else 'not met'} (cpu); {quick}"
        )
    print(f"  python -c pass (process start)  | {python[0]:7.2f} {python[1]:7.2f} |")
    print(
        f"DVC per always-changed stage      | {per_stage[0]:7.2f} {per_stage[1]:7.2f} | (repro - status) / stages: "
        f"the process plus DVC rewriting dvc.lock ({(repo / 'dvc.lock').stat().st_size:,} bytes)"
    )
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, help="a reproduced workspace (default: a fresh copy, reproduced first)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.repo:
        measure(args.repo.resolve(), args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="vovnet-bench-noop-") as tmp:
        measure(fresh_clone(Path(tmp)), args.runs)


if __name__ == "__main__":
    main()
