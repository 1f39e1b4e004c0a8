"""What a no-op costs: `dvc status` and a no-op `dvc repro` on the sample pipeline after `dvc repro`, in a fresh
copy of the repository (or in an existing workspace with --repo).

    python benchmarks/bench_dvc_noop.py              # fresh copy of the repository, dvc repro first (minutes)
    python benchmarks/bench_dvc_noop.py --repo .     # this workspace, already reproduced

Wall and CPU seconds (user + system of the command and its children), median of --runs. No stage is
always_changed (dvc.yaml's download@ depends on its params, its code and data/samples), so `dvc status` is
clean and a no-op `dvc repro` runs no stage: the target is a repro within 1.2x of status's time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
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
    status = median_of(runs, repo, "dvc", "status")
    repro = median_of(runs, repo, "dvc", "repro")
    ran = [line for line in repro[2].splitlines() if line.startswith("Running stage")]
    skipped = [line for line in repro[2].splitlines() if "didn't change, skipping" in line]
    ratio = repro[0] / status[0]
    print(f"\nmedian of {runs} | {'wall s':>7} {'cpu s':>7}")
    clean = "up to date" in status[2]
    print(
        f"dvc status      | {status[0]:7.2f} {status[1]:7.2f} | {'up to date' if clean else 'NOT CLEAN: ' + status[2]}"
    )
    print(f"dvc repro       | {repro[0]:7.2f} {repro[1]:7.2f} | ran {len(ran)} stages, {len(skipped)} unchanged")
    print(f"ratio repro/status (wall): {ratio:.2f}x; target <= 1.2x: {'met' if ratio <= 1.2 else 'not met'}")
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
