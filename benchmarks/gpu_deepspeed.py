"""`python benchmarks/gpu_check.py --part deepspeed`: DeepSpeed on one GPU (a world of 1), with the shipped
configs/accelerate/zero2_v100.yaml and zero3_v100.yaml, in fp16 (the V100 servers' dtype): stage 1, stage 2
and the save, then a run killed after its first checkpoint and resumed, against the uninterrupted run.

It runs the sample pipeline's data and tiny model in a temporary copy of the repository (`dvc repro merge
model`), and each training as `dvc repro` would: `python -m vovnet.launch stages/train.py` with
`launch.processes: 1` and the config (the launcher starts DeepSpeed under `accelerate launch` on a world
of 1 too). On CPU (`--device cpu`) the same runs use bf16: DeepSpeed refuses fp16 there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {"ZeRO-2": "configs/accelerate/zero2_v100.yaml", "ZeRO-3": "configs/accelerate/zero3_v100.yaml"}


def tracked_copy(root: Path, dst: Path) -> Path:
    """The repository's tracked files in a fresh git repository (what `dvc repro` needs)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, (x.decode() for x in files)):
        if (root / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, dst / f)
    env = {**os.environ, "GIT_AUTHOR_NAME": "c", "GIT_AUTHOR_EMAIL": "c@c", "GIT_COMMITTER_NAME": "c"}
    env["GIT_COMMITTER_EMAIL"] = "c@c"
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dst, check=True, env=env, capture_output=True)
    return dst


def set_params(repo: Path, **values) -> None:
    from ruamel.yaml import YAML

    y = YAML()
    d = y.load((repo / "params.yaml").read_text())
    for dotted, value in values.items():
        *parents, key = dotted.split(".")
        node = d
        for p in parents:
            node = node[p]
        node[key] = value
    with open(repo / "params.yaml", "w") as fh:
        y.dump(d, fh)


TRAIN = [sys.executable, "-m", "vovnet.launch", "stages/train.py"]


def run_training(repo: Path, config: str, out: str, kill_at_checkpoint: bool = False) -> tuple[int, str]:
    """One training; with kill_at_checkpoint, SIGKILL the launcher and every process under it (torchrun
    starts its workers in their own sessions) once a checkpoint is complete."""
    import psutil

    set_params(
        repo,
        **{
            "launch.config_file": config,
            "train.output_dir": f"models/{out}",
            "train.checkpoint_dir": f"checkpoints/{out}",
        },
    )
    log = repo / f"{out}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(TRAIN, cwd=repo, stdout=fh, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if kill_at_checkpoint and list((repo / "checkpoints" / out).glob("*/step-*/state.json")):
                tree = psutil.Process(proc.pid).children(recursive=True)
                for p in [*tree, psutil.Process(proc.pid)]:
                    try:
                        p.send_signal(signal.SIGKILL)
                    except psutil.NoSuchProcess:
                        continue
                psutil.wait_procs(tree, timeout=60)
                break
            time.sleep(0.1)
        proc.wait()
    return proc.returncode, log.read_text(errors="replace")


def relative_gap(a_dir: Path, b_dir: Path) -> float:
    """The largest per-tensor ||a - b|| / ||b|| over the saved adapter and head."""
    from safetensors.torch import load_file

    gaps = []
    for name in ("adapter_model.safetensors", "head.safetensors"):
        a, b = load_file(str(a_dir / name)), load_file(str(b_dir / name))
        for k in b:
            diff = (a[k].double() - b[k].double()).norm() / b[k].double().norm().clamp_min(1e-30)
            gaps.append(float(diff))
    return max(gaps)


def last_line(log: str) -> str:
    lines = [x for x in log.strip().splitlines() if x.strip()]
    return (lines[-1] if lines else "no output")[:160]


def engine_line(log: str) -> str:
    """What the trainer read from the engine ("stage 2 runs on DeepSpeed ZeRO-3 on 1 process(es)")."""
    found = [x.split("train: ", 1)[1] for x in log.splitlines() if "runs on DeepSpeed" in x]
    return found[-1] if found else "no engine line"


def run(device: str) -> list[tuple]:
    """Rows: (config, check, figure, verdict)."""
    root = Path(__file__).resolve().parents[1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = tracked_copy(root, Path(tmp) / "vovnet")
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        subprocess.run(["dvc", "repro", "merge", "model"], cwd=repo, check=True, env=env, capture_output=True)
        dtype = "float16" if device == "cuda" else "bfloat16"
        set_params(repo, **{"model.dtype": dtype, "train.save_every": 5, "launch.processes": 1})
        for name, config in CONFIGS.items():
            t0 = time.time()
            rc, log = run_training(repo, config, f"{name}-whole")
            seconds = time.time() - t0
            if rc != 0:
                rows.append((name, f"stage 1, stage 2, save ({dtype})", f"rc {rc}", f"FAILED: {last_line(log)}"))
                continue
            rows.append((name, f"stage 1, stage 2, save ({dtype})", f"{seconds:.0f} s", engine_line(log)))
            rc, log = run_training(repo, config, f"{name}-resumed", kill_at_checkpoint=True)
            rc, log = run_training(repo, config, f"{name}-resumed")
            if rc != 0 or "resuming from" not in log:
                rows.append((name, "kill at a checkpoint, resume", f"rc {rc}", f"FAILED: {last_line(log)}"))
                continue
            gap = relative_gap(repo / "models" / f"{name}-resumed", repo / "models" / f"{name}-whole")
            verdict = "ok" if gap < 1e-4 else "DIFFERS"
            rows.append((name, "kill at a checkpoint, resume vs uninterrupted", f"gap {gap:.1e}", verdict))
    return rows


def report(device: str) -> None:
    t0 = time.time()
    rows = run(device)
    where = "one CUDA GPU, fp16" if device == "cuda" else "CPU, bf16"
    print(
        f"\ngpu_check deepspeed ({where}, a world of 1, the sample pipeline's tiny model); {time.time() - t0:.0f} s\n"
    )
    head = ("config", "check", "figure", "result")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
