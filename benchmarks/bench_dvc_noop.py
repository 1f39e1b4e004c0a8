"""What a no-op costs: `dvc status` and a no-op `dvc repro` on the sample pipeline after `dvc repro`, in a fresh
copy of the repository (or in an existing workspace with --repo).

    python benchmarks/bench_dvc_noop.py              # fresh copy of the repository, dvc repro first (minutes)
    python benchmarks/bench_dvc_noop.py --repo .     # this workspace, already reproduced

The commands run interleaved (status, repro, repro -P, status, ...) so that the load from other processes hits
them alike; it prints the median wall and CPU seconds (user + system of the command and its children) of
--runs rounds, the ratio repro/status of each and the target (repro <= 1.2x status, wall). No stage is
always_changed (dvc.yaml's download@ depends on its params, its code and data/samples), so `dvc status` is
clean and a no-op `dvc repro` runs no stage.

Where a no-op repro's extra time goes (DVC 3.67.1; docs/results.md, section 8, has the figures): it does what
status does (load dvc.yaml and dvc.lock, check each stage's deps and outs), and besides
- loads dvc.yaml and dvc.lock a second time: its default target `dvc.yaml` is collected from the file
  (dvc/repo/reproduce.py collect_stages), apart from the index that builds the graph;
- takes each stage's read/write lock four times (Stage.reproduce, changed, _changed_deps, changed_outs),
  status once: each take and release rewrites .dvc/tmp/rwlock (JSON) under a file lock;
- imports networkx and builds the stage graph.
`dvc repro -P` (all pipelines: in this repository the same stages) skips the second load; it is timed too.
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
TARGET = 1.2
COMMANDS = {
    "dvc status": ("dvc", "status"),
    "dvc repro": ("dvc", "repro"),
    "dvc repro -P": ("dvc", "repro", "-P"),
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


def interleaved(runs: int, cwd: Path) -> dict[str, tuple[float, float, str]]:
    """Median wall and CPU of each command over `runs` rounds, one of each per round; the last output."""
    results: dict[str, list[tuple[float, float, str]]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, cmd in COMMANDS.items():
            results[name].append(timed(cwd, *cmd))
    return {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs), rs[-1][2])
        for name, rs in results.items()
    }


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
    med = interleaved(runs, repo)
    status = med["dvc status"]
    clean = "up to date" in status[2]
    print(f"\nmedian of {runs} rounds, interleaved | {'wall s':>7} {'cpu s':>7} | {'wall x':>6} {'cpu x':>6}")
    for name, (wall, cpu, out) in med.items():
        lines = out.splitlines()
        if name == "dvc status":
            what = "up to date" if clean else "NOT CLEAN: " + out
        else:
            ran = [line for line in lines if line.startswith("Running stage")]
            skipped = [line for line in lines if "didn't change, skipping" in line]
            what = f"ran {len(ran)} stages, {len(skipped)} unchanged"
        print(f"{name:<32} | {wall:7.2f} {cpu:7.2f} | {wall / status[0]:6.2f} {cpu / status[1]:6.2f} | {what}")
    repro = med["dvc repro"]
    ratio = repro[0] / status[0]
    print(
        f"ratio dvc repro / dvc status: {ratio:.2f}x wall, {repro[1] / status[1]:.2f}x cpu; "
        f"target <= {TARGET}x (wall): {'met' if ratio <= TARGET else 'not met'}"
    )
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, help="a reproduced workspace (default: a fresh copy, reproduced first)")
    ap.add_argument("--runs", type=int, default=3, help="rounds (one of each command per round); default 3")
    args = ap.parse_args()
    if args.repo:
        measure(args.repo.resolve(), args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="vovnet-bench-noop-") as tmp:
        measure(fresh_clone(Path(tmp)), args.runs)


if __name__ == "__main__":
    main()
