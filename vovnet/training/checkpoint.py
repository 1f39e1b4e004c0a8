"""Resumable checkpoints (outside DVC outs): trainable weights as safetensors; optimizer, scheduler and
RNG state through torch.save, read back with weights_only=True (no pickle of arbitrary objects)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vovnet.io_utils import atomic_path


def save_checkpoint(folder: str | Path, step: int, model, optimizer, scheduler, state: dict, keep: int = 2) -> Path:
    folder = Path(folder)
    path = folder / f"step-{step:08d}"
    with atomic_path(path) as tmp:
        tmp.mkdir()
        # every parameter that any stage trains (LoRA or full weights, head), whatever requires_grad now
        trained = getattr(model, "trained_names", frozenset())
        save_file(
            {
                n: p.detach().cpu().contiguous()
                for n, p in model.named_parameters()
                if n in trained or "lora_" in n or n.startswith("head.") or p.requires_grad
            },
            str(tmp / "trainable.safetensors"),
        )
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()},
            tmp / "optim.pt",
        )
        (tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    for old in sorted(folder.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def latest_checkpoint(folder: str | Path) -> Path | None:
    done = [p for p in sorted(Path(folder).glob("step-*")) if (p / "state.json").exists()]
    return done[-1] if done else None


def load_checkpoint(path: Path, model) -> tuple[dict, dict]:
    weights = load_file(str(path / "trainable.safetensors"))
    missing = set(weights) - {n for n, _ in model.named_parameters()}
    if missing:
        raise ValueError(f"checkpoint {path} has parameters the model lacks: {sorted(missing)[:3]}")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t.to(params[n].dtype))
    optim = torch.load(path / "optim.pt", weights_only=True)
    return json.loads((path / "state.json").read_text()), optim
