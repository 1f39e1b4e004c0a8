"""Which engine runs a training stage, read from the engine itself, and the few things that differ between
them: plain torch (one process, or DDP) keeps whole fp32 trainable weights in the module; DeepSpeed casts
the whole module to its half dtype, keeps the fp32 master weights in its optimizer, and under ZeRO-3 holds
only this rank's partition of each parameter."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


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


def deepspeed_engine(wrapped):
    """The DeepSpeedEngine that `accelerator.prepare` returned, or None for any other wrapper."""
    if wrapped is None or type(wrapped).__name__ != "DeepSpeedEngine":
        return None
    return wrapped


def engine_info(wrapped, processes: int) -> EngineInfo:
    """What actually runs: read from the prepared model (the engine reports its own ZeRO stage)."""
    engine = deepspeed_engine(wrapped)
    if engine is None:
        return EngineInfo("torch", 0, processes)
    return EngineInfo("deepspeed", int(engine.zero_optimization_stage()), processes)


def planned_engine(accelerator, processes: int) -> EngineInfo:
    """What the accelerator will build at prepare time (for checks before any engine exists)."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return EngineInfo("torch", 0, processes)
    return EngineInfo("deepspeed", int(plugin.zero_stage), processes)


def compute_dtype(wrapped, model) -> torch.dtype:
    """The dtype the stage's forward runs the language model in (the engine's cast, else the model's own)."""
    engine = deepspeed_engine(wrapped)
    if engine is not None:
        return engine.get_data_types()[0]
    return next(p.dtype for n, p in model.named_parameters() if ".visual." not in f".{n}")


def full_precision_weights(model, names: list[str], wrapped) -> dict[str, torch.Tensor]:
    """fp32 CPU copies of the named parameters, whole. Under DeepSpeed a parameter this stage trains comes
    from the optimizer's fp32 master weights (the module holds a half copy); a frozen one from the module,
    gathered under ZeRO-3. Collective under DeepSpeed: every rank calls it with the same names."""
    params = dict(model.named_parameters())
    engine = deepspeed_engine(wrapped)
    out = {}
    for name in sorted(names):
        p = params[name]
        if engine is None:
            value = p.detach()
        elif p.requires_grad:
            import deepspeed

            value = deepspeed.utils.safe_get_full_fp32_param(p)
        else:
            value = gathered(p)
        out[name] = value.detach().float().cpu().clone()
    return out


def gathered(p: torch.Tensor) -> torch.Tensor:
    """A parameter's whole value: under ZeRO-3 its partitions are gathered for the copy (collective)."""
    if not hasattr(p, "ds_id"):
        return p.detach()
    import deepspeed

    with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
        return p.detach().clone()


def largest_module_numel(model) -> int:
    """The most parameters that any one leaf module owns: what ZeRO-3 gathers at once, at most."""
    return max((sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()), default=0)
