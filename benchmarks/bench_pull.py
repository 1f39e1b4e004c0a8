"""What each way of getting a pushed pipeline onto a fresh clone really does (the README's server advice).

A temporary copy of this repository runs `dvc repro` (the sample preset, minutes on 2 CPUs) and pushes to
a local remote; then, in a fresh `git clone` per variant, one command runs and we count the data files it
left, whether `dvc status` is clean and how many `python -m vovnet doctor` checks fail.

    python benchmarks/bench_pull.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}
VARIANTS = ["dvc pull", "dvc repro --pull", "dvc repro --pull --allow-missing"]
DATA = ("data/processed", "data/raw", "models", "eval")


def sh(cwd, cmd: str, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, shell=True, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and p.returncode:
        sys.exit(f"{cmd} failed in {cwd}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def data_files(repo: Path) -> int:
    return sum(1 for d in DATA for f in (repo / d).rglob("*") if f.is_file() and f.name != ".gitignore")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        origin, remote = tmp / "origin", tmp / "remote"
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        for f in filter(None, files.decode().split("\0")):
            if (ROOT / f).is_file():
                (origin / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / f, origin / f)
        sh(origin, "git init -q && git add -A && git commit -qm copy")
        t0 = time.perf_counter()
        sh(origin, "dvc repro")
        print(f"dvc repro in the origin: {time.perf_counter() - t0:.0f} s")
        sh(origin, f"dvc remote add -d store {remote} && git add -A && git commit -qm pipeline && dvc push")
        print("| command in a fresh clone | s | data files | dvc status | doctor fails | last line |")
        print("|---|---:|---:|---|---:|---|")
        for i, cmd in enumerate(VARIANTS):
            clone = tmp / f"clone{i}"
            sh(tmp, f"git clone -q {origin} {clone}")
            t0 = time.perf_counter()
            p = sh(clone, cmd, check=False)
            secs = time.perf_counter() - t0
            status = sh(clone, "dvc status", check=False).stdout.strip().splitlines()
            clean = "up to date" if status and "up to date" in status[-1] else f"{len(status)} lines of changes"
            doctor = sh(clone, f"{sys.executable} -m vovnet doctor", check=False).stdout
            last = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
            print(
                f"| `{cmd}` | {secs:.1f} | {data_files(clone)} | {clean} | {doctor.count('[fail]')} | {last[0][:60]} |"
            )
        print(f"origin after dvc repro: {data_files(origin)} data files")


if __name__ == "__main__":
    main()
