"""Resumable checkpoints (outside DVC outs), one folder per optimizer step:

    trainable.safetensors  every weight the run trains, fp32 and whole (gathered under ZeRO-3)
    optim.pt               the scheduler; plain torch: the optimizer and the loss scaler too
    engine/                DeepSpeed: the engine's own checkpoint (each rank's optimizer partition, loss scale)
    rng/rank-<r>.pt        each process's CPU (and CUDA) RNG state: dropout draws from it
    engine.json            which engine wrote it: name, ZeRO stage, processes
    state.json             the data position (stage, epoch, step, optimizer step); written last

Our files are read back with weights_only=True (no pickle of arbitrary objects). A DeepSpeed checkpoint is
read by DeepSpeed's own load_checkpoint: its optimizer state holds the engine's loss-scaler object."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vovnet import VovnetError
from vovnet.resume import EngineInfo, check_resumable

ENGINE_TAG = "engine"  # DeepSpeed's tag: its files go under <checkpoint>/engine/


@dataclass
class Checkpoint:
    path: Path
    state: dict  # the data position
    weights: dict[str, torch.Tensor]
    extra: dict  # optim.pt: scheduler, and for plain torch optimizer and scaler


def save_checkpoint(
    folder: str | Path,
    step: int,
    *,
    weights: dict[str, torch.Tensor],
    extra: dict,
    state: dict,
    engine: EngineInfo,
    main: bool,
    wait,
    rank: int = 0,
    ds_engine=None,
    keep: int = 2,
) -> Path:
    """Every rank calls this (DeepSpeed writes each rank's partition); the main process writes our files.
    The folder appears under its final name only once complete, so a kill never leaves half a checkpoint."""
    folder = Path(folder)
    final, partial = folder / f"step-{step:08d}", folder / f".step-{step:08d}.partial"
    if main:
        for stale in folder.glob(".step-*.partial"):  # left by a run killed while it saved
            shutil.rmtree(stale, ignore_errors=True)
        partial.mkdir(parents=True)
    wait()
    if ds_engine is not None:  # the frozen base model is on disk already: only what trains is saved
        ds_engine.save_checkpoint(
            str(partial / ENGINE_TAG), tag=ENGINE_TAG, save_latest=False, exclude_frozen_parameters=True
        )
    (partial / "rng").mkdir(exist_ok=True)
    torch.save(rng_state(), partial / "rng" / f"rank-{rank}.pt")
    if main:
        save_file({n: t.contiguous() for n, t in weights.items()}, str(partial / "trainable.safetensors"))
        torch.save(extra, partial / "optim.pt")
        (partial / "engine.json").write_text(json.dumps(engine.as_dict(), indent=2, sort_keys=True) + "\n")
        (partial / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    wait()
    if main:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        for old in sorted(folder.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    wait()
    return final


def rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(path: Path, rank: int) -> None:
    """This process's RNG as it was (rank 0's where the checkpoint has no file for this rank: another
    process count, or a checkpoint from before the per-rank files)."""
    files = [path / "rng" / f"rank-{rank}.pt", path / "rng" / "rank-0.pt"]
    found = next((f for f in files if f.exists()), None)
    if found is None:
        torch.set_rng_state(torch.load(path / "optim.pt", weights_only=True)["rng"])
        return
    state = torch.load(found, weights_only=True)
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def read_checkpoint(path: Path, now: EngineInfo) -> Checkpoint:
    check_resumable(path, now)
    weights = load_file(str(path / "trainable.safetensors"))
    extra = torch.load(path / "optim.pt", weights_only=True)
    state = json.loads((path / "state.json").read_text())
    return Checkpoint(path, state, weights, extra)


def load_weights(model, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Copy a checkpoint's trained weights into the model (before any engine wraps it)."""
    params = dict(model.named_parameters())
    missing = sorted(set(weights) - set(params))
    if missing:
        raise VovnetError(f"checkpoint {path} has parameters the model lacks: {missing[:3]}")
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t.to(params[n].dtype))


def load_engine_state(ds_engine, path: Path) -> None:
    """DeepSpeed's optimizer partitions, fp32 master weights and loss scale, by DeepSpeed itself."""
    loaded, _ = ds_engine.load_checkpoint(
        str(path / ENGINE_TAG),
        tag=ENGINE_TAG,
        load_module_strict=False,
        load_optimizer_states=True,
        load_lr_scheduler_states=False,
    )
    if loaded is None:
        raise VovnetError(f"checkpoint {path}: DeepSpeed found no engine state under {path / ENGINE_TAG}")
