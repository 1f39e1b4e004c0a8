"""Which engine runs a training stage, read from the engine itself, and the few things that differ between
them: plain torch (one process, or DDP) keeps whole fp32 trainable weights in the module; DeepSpeed casts
the whole module to its half dtype, keeps the fp32 master weights in its optimizer, and under ZeRO-3 holds
only this rank's partition of each parameter."""

from __future__ import annotations

import logging

import torch

from vovnet import VovnetError
from vovnet.model.loading import keep_vision_fp32, vision_towers
from vovnet.resume import EngineInfo

log = logging.getLogger("vovnet.train")


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


def configure_deepspeed(accelerator, plan, tcfg: dict) -> None:
    """We cut the batches ourselves, so DeepSpeed learns their sizes from us, and train.max_grad_norm is
    the one clipping setting (DeepSpeed clips inside its step; accelerate's clip_grad_norm_ is a no-op)."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    configured = plugin.deepspeed_config.get("gradient_clipping", "auto")
    if configured not in ("auto", None) and float(configured) != float(tcfg["max_grad_norm"]):
        raise VovnetError(
            f"the accelerate config sets deepspeed_config.gradient_clipping {configured}, but params.yaml's "
            f"train.max_grad_norm is {tcfg['max_grad_norm']}: remove it from the config (train.max_grad_norm "
            "is the one setting)"
        )
    plugin.deepspeed_config.update(
        train_micro_batch_size_per_gpu=plan.micro,
        train_batch_size=plan.batch,
        gradient_accumulation_steps=plan.accumulation,
        gradient_clipping=tcfg["max_grad_norm"],
    )


def restore_fp32_vision(accelerator, model) -> None:
    """DeepSpeed's fp16 engine casts the whole module to fp16; a frozen vision tower goes back to fp32
    (loading.keep_vision_fp32). ZeRO-1/2 keep frozen weights whole, in the module, so the cast can be
    undone. ZeRO-3 cannot: it stores every parameter of the engine's module as a flat partition in the
    engine's dtype and gathers it in that dtype for each forward, so an fp32 tower would have to live
    outside the engine, whole on every GPU (+2.3 GB for the 8B's 0.58B-parameter tower). There the tower
    runs in fp16, and the non-finite checks name the remedy if it overflows."""
    ds = getattr(accelerator.state, "deepspeed_plugin", None)
    if ds is None or accelerator.mixed_precision != "fp16":
        return
    towers = vision_towers(model)
    if any(p.requires_grad for t in towers for p in t.parameters()):
        return  # a trained tower's fp16 copy is the engine's; its master weights are fp32 already
    if int(ds.deepspeed_config.get("zero_optimization", {}).get("stage", 0)) >= 3:
        log.warning(
            "ZeRO-3 under fp16: the vision tower runs in fp16 (ZeRO-3 holds every weight as an fp16 "
            "partition); if a loss turns non-finite, use ZeRO-2 on 32 GB cards"
        )
        return
    keep_vision_fp32(model)


def set_weights(model, weights: dict[str, torch.Tensor]) -> None:
    """Put the whole fp32 trained weights back into the module for saving (after the last step; under
    DeepSpeed its parameters are half copies, and under ZeRO-3 partitions). LoRA and head stay fp32;
    fully trained weights return to the dtype the factory built them in (model.trained_dtypes)."""
    params = dict(model.named_parameters())
    for name, value in weights.items():
        params[name].data = value.to(model.trained_dtypes[name])
