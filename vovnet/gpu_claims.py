"""GPUs shared by queued experiments: each launch claims a disjoint set of the visible GPUs.

`dvc queue start -j 4` on 8 GPUs starts four workers, and each launch would otherwise take all eight. With
`launch.gpus_per_experiment: 2` the launcher cuts the visible GPUs into sets of 2 (0-1, 2-3, ...), takes the
first set whose every GPU it can lock, and runs the stage on those only (CUDA_VISIBLE_DEVICES).

The lock is `fcntl.flock` on one file per GPU in a folder every process on the machine sees. The kernel
releases a flock when the last descriptor of it closes, so a worker that crashes or is killed (SIGKILL
included) frees its GPUs without any cleanup; the stage's processes inherit the descriptors, so the GPUs stay
claimed while any of them still runs. Sets are fixed and aligned, so two claimers never hold half a set each.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vovnet import VovnetError

DEFAULT_LOCK_DIR = "/tmp/vovnet-gpu-claims"  # machine-wide: every user's and every worker's launches meet here


@dataclass
class Claim:
    """The GPUs one launch holds, and the open lock files that hold them."""

    ids: list[str]
    fds: list[int]

    @property
    def visible(self) -> str:
        return ",".join(self.ids)

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)  # closing the last descriptor drops the flock
        self.fds = []


def visible_gpu_ids(env: dict | None = None) -> list[str]:
    """The GPUs this process may use, as CUDA names them: CUDA_VISIBLE_DEVICES when set (indices or UUIDs,
    as given), else every GPU the driver lists (NVML), else none."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        return [t.strip() for t in env["CUDA_VISIBLE_DEVICES"].split(",") if t.strip()]
    from vovnet import gpu_env

    return [str(i) for i in range(len(gpu_env.driver().names))]


def gpu_sets(ids: list[str], per_set: int) -> list[list[str]]:
    """The visible GPUs cut into aligned sets of `per_set`; one line when they do not divide."""
    if not ids:
        raise VovnetError(
            f"params.yaml: launch.gpus_per_experiment is {per_set} but no GPU is visible "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); set it to null"
        )
    if len(ids) % per_set:
        raise VovnetError(
            f"params.yaml: launch.gpus_per_experiment {per_set} does not divide the {len(ids)} visible GPUs "
            f"({','.join(ids)}): choose a divisor of {len(ids)}"
        )
    return [ids[i : i + per_set] for i in range(0, len(ids), per_set)]


def _lock_path(lock_dir: Path, gpu: str) -> Path:
    return lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu)}.lock"


def _try_set(lock_dir: Path, gpus: list[str]) -> list[int] | None:
    """Lock every GPU of the set without waiting; on any refusal undo the ones taken and say None."""
    fds: list[int] = []
    for gpu in gpus:
        fd = os.open(_lock_path(lock_dir, gpu), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            for taken in fds:
                os.close(taken)
            return None
        fds.append(fd)
    return fds


def _holders(lock_dir: Path, ids: list[str]) -> str:
    """Who holds the GPUs, read from what each claimer wrote into its lock files (for the waiting line)."""
    pids = set()
    for gpu in ids:
        try:
            text = _lock_path(lock_dir, gpu).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            pids.add(text)
    return ", ".join(sorted(pids)) or "unknown"


def _mark(fds: list[int]) -> None:
    """Write our pid into the lock files we hold, so a waiting launch can say who it waits for."""
    for fd in fds:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)


def claim_gpus(
    per_set: int, ids: list[str], lock_dir: str | os.PathLike = DEFAULT_LOCK_DIR, poll_s: float = 5.0
) -> Claim:
    """Claim the first free set of `per_set` GPUs out of `ids`, waiting (and saying so once) while none is."""
    sets = gpu_sets(ids, per_set)
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        for gpus in sets:
            fds = _try_set(lock_dir, gpus)
            if fds is not None:
                _mark(fds)
                return Claim(gpus, fds)
        if not said:
            print(
                f"launch: waiting for {per_set} free GPU(s): all {len(sets)} set(s) of {','.join(ids)} are claimed "
                f"by other launches ({_holders(lock_dir, ids)}; locks in {lock_dir})",
                file=sys.stderr,
                flush=True,
            )
            said = True
        time.sleep(poll_s)


def claim_for_launch(lcfg: dict) -> Claim | None:
    """launch.gpus_per_experiment's claim out of the GPUs visible to this launch; None when it is null."""
    per_set = lcfg["gpus_per_experiment"]
    if per_set is None:
        return None
    if lcfg["processes"] not in ("auto", per_set):
        raise VovnetError(
            f"params.yaml: launch.processes {lcfg['processes']} with launch.gpus_per_experiment {per_set}: "
            "an experiment runs one process per claimed GPU, so set processes to auto"
        )
    return claim_gpus(per_set, visible_gpu_ids(), lcfg["gpu_claims_dir"])
