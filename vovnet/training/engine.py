"""Which engine runs a training stage, read from the engine itself, and the few things that differ between
them: plain torch (one process, or DDP) keeps whole fp32 trainable weights in the module; DeepSpeed casts
the whole module to its half dtype, keeps the fp32 master weights in its optimizer, and under ZeRO-3 holds
only this rank's partition of each parameter."""

from __future__ import annotations

import logging
import sys

import torch

from vovnet import VovnetError
from vovnet.model.factory import finetune_mode, fp32_master_weights
from vovnet.model.loading import keep_vision_fp32, vision_towers
from vovnet.resume import EngineInfo

log = logging.getLogger("vovnet.train")


def deepspeed_engine(wrapped):
    """The DeepSpeedEngine that `accelerator.prepare` returned, or None for any other wrapper (DeepSpeed
    not imported means no engine of it exists)."""
    deepspeed = sys.modules.get("deepspeed")
    return wrapped if deepspeed is not None and isinstance(wrapped, deepspeed.DeepSpeedEngine) else None


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
    # accelerate turns on fp16 auto_cast, which casts every float input of the batch to fp16 before the
    # forward; the model casts its own inputs (the vision tower takes pixel values in its dtype), as it does
    # under bf16, where accelerate sets no auto_cast
    fp16 = plugin.deepspeed_config.get("fp16")
    if isinstance(fp16, dict) and str(fp16.get("enabled")).lower() == "true":
        fp16["auto_cast"] = False


def set_master_weights(wrapped, model, weights: dict[str, torch.Tensor]) -> None:
    """A new engine builds its fp32 master weights from the module's half copies; what an earlier stage
    trained goes in at full precision instead (every rank; each keeps its own partition)."""
    import deepspeed
    import torch.distributed as dist

    for name, p in model.named_parameters():
        if not (p.requires_grad and name in weights):
            continue
        value = weights[name].to(p.device)
        if not hasattr(p, "ds_id"):
            deepspeed.utils.safe_set_full_fp32_param(p, value)
            continue
        # ZeRO-3: this rank's slice of the zero-padded flat value (DeepSpeed's full setter cannot fill the
        # padded last partition of a parameter whose size the world does not divide)
        part = p.ds_tensor.numel()
        padded = torch.nn.functional.pad(value.flatten(), (0, part * dist.get_world_size() - value.numel()))
        deepspeed.utils.safe_set_local_fp32_param(p, padded.narrow(0, part * dist.get_rank(), part))


def clipping(wrapped) -> str:
    """The gradient clipping the engine applies, as it reports it (DeepSpeed), else train.max_grad_norm's."""
    engine = deepspeed_engine(wrapped)
    return f", gradient clipping {engine.gradient_clipping()}" if engine is not None else ""


def master_weights(accelerator, model, mcfg: dict) -> None:
    """Outside DeepSpeed an fp16 model's trained weights step in fp32 (factory.fp32_master_weights); under
    DeepSpeed the engine keeps them. A full fine-tune under ZeRO-3 is refused: its save would need every
    frozen weight gathered onto one process, which only the tiny demo models could afford."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        for lm in (model.lm, model.full_lm):
            if lm is not None:
                fp32_master_weights(lm)  # a no-op for what is not fp16
        return
    if int(plugin.zero_stage) >= 3 and finetune_mode(mcfg) == "full":
        raise VovnetError(
            "params.yaml: model.finetune: full under ZeRO-3 is not supported (the saved model would need "
            "every frozen weight gathered); use LoRA, or configs/accelerate/zero2_v100.yaml"
        )


def restore_fp32_vision(engine: EngineInfo, accelerator, model) -> None:
    """DeepSpeed's fp16 engine casts the whole module to fp16; a frozen vision tower goes back to fp32
    (loading.keep_vision_fp32). ZeRO-1/2 keep frozen weights whole, in the module, so the cast can be
    undone. ZeRO-3 cannot: it stores every parameter of the engine's module as a flat partition in the
    engine's dtype and gathers it in that dtype for each forward, so an fp32 tower would have to live
    outside the engine, whole on every GPU (+2.3 GB for the 8B's 0.58B-parameter tower). There the tower
    runs in fp16, and the non-finite checks name the remedy if it overflows."""
    if engine.name != "deepspeed" or accelerator.mixed_precision != "fp16":
        return
    towers = vision_towers(model)
    if any(p.requires_grad for t in towers for p in t.parameters()):
        return  # a trained tower's fp16 copy is the engine's; its master weights are fp32 already
    if engine.zero_stage >= 3:
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
