"""Which checkpoints a training run resumes, and whether the launch at hand can: shared by the trainer and
the launcher, which checks before any process starts (so a mismatch is one line, not a worker's traceback
under torchrun). Below both: nothing here imports torch or the model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from vovnet import VovnetError
from vovnet.config import trained_policy
from vovnet.io_utils import dumps


@dataclass(frozen=True)
class EngineInfo:
    name: str  # "torch" (one process or DDP) or "deepspeed"
    zero_stage: int  # 0 outside DeepSpeed
    processes: int

    def describe(self) -> str:
        if self.name == "deepspeed":
            return f"DeepSpeed ZeRO-{self.zero_stage} on {self.processes} process(es)"
        return f"torch ({'DDP' if self.processes > 1 else 'one process'}) on {self.processes} process(es)"

    def as_dict(self) -> dict:
        return asdict(self)


def run_fingerprint(params: dict) -> str:
    """Checkpoints belong to one configuration + both stages' files; another experiment never resumes them."""
    t = params["train"]
    keep = {
        k: v for k, v in t.items() if k not in ("resume", "log_every", "save_every", "checkpoint_dir", "output_dir")
    }
    # inference-time knobs (policy.cost_shift) leave the fingerprint: trying another never retrains
    policy = trained_policy(params["policy"])
    h = hashlib.sha256(dumps([params["model"], policy, params["vision_budget"], keep]).encode())
    for path in (t["train_file"], t["policy_file"]):
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


# DVC runs a queued or `--temp` experiment in a copy under <workspace>/.dvc/tmp/exps/ and deletes the copy
# when the run ends, failed or not (dvc/repo/experiments/executor/local.py, TempDirExecutor)
EXPERIMENT_COPIES = (".dvc", "tmp", "exps")


def workspace_of(folder: Path) -> Path:
    """The workspace that owns `folder`: itself, or for an experiment's temporary copy, the workspace that
    queued it (where what must outlive the copy is kept)."""
    parts = folder.resolve().parts
    n = len(EXPERIMENT_COPIES)
    for i in range(len(parts) - n, 0, -1):
        if parts[i : i + n] == EXPERIMENT_COPIES:
            return Path(*parts[:i])
    return folder


def run_checkpoints(params: dict) -> Path:
    """This configuration's checkpoint folder. A relative train.checkpoint_dir is the workspace's, also for a
    queued experiment, so a failed queued run resumes when it is queued again."""
    folder = Path(params["train"]["checkpoint_dir"]).expanduser()
    if not folder.is_absolute():
        folder = workspace_of(Path.cwd()) / folder
    return folder / run_fingerprint(params)


def latest_checkpoint(folder: str | Path) -> Path | None:
    done = [p for p in sorted(Path(folder).glob("step-*")) if (p / "state.json").exists()]
    return done[-1] if done else None


def written_by(path: Path) -> EngineInfo:
    """The engine a checkpoint records (checkpoints from before engine.json: plain torch)."""
    f = path / "engine.json"
    if not f.exists():
        return EngineInfo("torch", 0, 0)
    return EngineInfo(**json.loads(f.read_text()))


def check_resumable(path: Path, now: EngineInfo) -> None:
    """Plain torch keeps whole optimizer state, so any process count resumes it. DeepSpeed keeps each rank's
    partition of its flattened optimizer state, which only the same ZeRO stage on the same number of
    processes can load; anything else is one line naming the folder and what differs."""
    then = written_by(path)
    if then == now or then.name == now.name == "torch":
        return
    raise VovnetError(
        f"checkpoint {path} was written by {then.describe()}, but this run is {now.describe()}: "
        "DeepSpeed cannot load another engine's or layout's optimizer state; resume with the launch that "
        "wrote it, or delete "
        f"{path.parent} to start this configuration from step 0"
    )


def require_resumable(params: dict, launch) -> None:
    """Before any process starts (the launcher): the checkpoint a training launch would resume is one this
    launch's engine can load, else the same one line the trainer would give, without a worker's traceback."""
    from vovnet.launch_configs import deepspeed_settings

    tcfg = params["train"]
    if tcfg["resume"] != "auto" or not all(Path(tcfg[k]).is_file() for k in ("train_file", "policy_file")):
        return  # nothing to resume, or the stage fails on its own missing input
    path = latest_checkpoint(run_checkpoints(params))
    if path is None:
        return
    # accelerate's DeepSpeed plugin runs ZeRO-2 when a config names no stage
    stage = int(deepspeed_settings(launch.config_file).get("zero_stage", 2)) if launch.deepspeed else 0
    check_resumable(path, EngineInfo("deepspeed" if launch.deepspeed else "torch", stage, launch.processes))
