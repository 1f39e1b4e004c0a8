"""The fp16 training parts that DeepSpeed will not run on CPU, checked with torch's, accelerate's and
DeepSpeed's own classes: fp32 master weights for a full fine-tune under GradScaler, a step the scaler skips
leaves the schedule alone, the scaler's state survives a checkpoint, the head keeps its dtype contract in
an engine's half dtype, and gradient clipping has one source."""

import json

import pytest
import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer

from vovnet import VovnetError
from vovnet.model.policy import PolicyFeatures, PolicyHead
from vovnet.resume import EngineInfo, check_resumable
from vovnet.training.checkpoint import read_checkpoint, save_checkpoint
from vovnet.training.engine import configure_deepspeed, master_weights
from vovnet.training.trainer import StageTools, apply_step


def test_full_finetune_under_fp16_steps_fp32_master_weights_that_grad_scaler_can_unscale(tiny_model_dir, params):
    from vovnet.model.factory import build_vovnet

    p = json.loads(json.dumps(params))
    p["model"].update(name=str(tiny_model_dir), finetune="full", dtype="float16")
    model, _ = build_vovnet(p)
    master_weights(Accelerator(cpu=True), model, p["model"])  # what the trainer does outside DeepSpeed
    trainable = [q for q in model.parameters() if q.requires_grad]
    assert trainable and all(q.dtype == torch.float32 for q in trainable)
    frozen_lm = [q for n, q in model.lm.named_parameters() if not q.requires_grad and ".visual." not in n]
    assert all(q.dtype == torch.float16 for q in frozen_lm)  # what does not train stays fp16
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    loss = sum((q.float() ** 2).mean() for q in trainable)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # fp16 trainable weights raise "Attempting to unscale FP16 gradients" here
    scaler.step(optimizer)
    # the control: the same step on fp16 weights is what a full fine-tune hit before
    half = torch.nn.Linear(4, 2).half()
    opt16 = torch.optim.AdamW(half.parameters())
    scaler16 = torch.amp.GradScaler("cpu")
    scaler16.scale(half(torch.ones(1, 4, dtype=torch.float16)).float().sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        scaler16.unscale_(opt16)


def scaled_tools(scale: float = 2.0**10):
    """A Linear, AdamW through accelerate's AcceleratedOptimizer with torch's GradScaler, and a schedule."""
    acc = Accelerator(cpu=True)
    acc.scaler = torch.amp.GradScaler("cpu", init_scale=scale)  # what accelerate sets up under fp16 on a GPU
    layer = torch.nn.Linear(3, 1)
    optimizer = AcceleratedOptimizer(torch.optim.AdamW(layer.parameters(), lr=0.1), scaler=acc.scaler)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer.optimizer, lambda s: 1.0 / (s + 1))
    return acc, layer, StageTools(layer, optimizer, scheduler)


def test_a_step_the_loss_scaler_skips_does_not_advance_the_schedule():
    acc, layer, tools = scaled_tools()
    before = layer.weight.detach().clone()
    acc.scaler.scale(layer(torch.ones(1, 3)).sum() * float("inf")).backward()
    assert apply_step(acc, tools, max_grad_norm=1.0) is True
    assert tools.scheduler.last_epoch == 0 and torch.equal(layer.weight, before)
    assert acc.scaler.get_scale() == 2.0**9  # the scaler backed off
    tools.optimizer.zero_grad()
    acc.scaler.scale(layer(torch.ones(1, 3)).sum()).backward()
    assert apply_step(acc, tools, max_grad_norm=1.0) is False
    assert tools.scheduler.last_epoch == 1 and not torch.equal(layer.weight, before)


def test_the_loss_scalers_state_survives_a_checkpoint(tmp_path):
    acc, layer, tools = scaled_tools(scale=2.0**12)
    for _ in range(2):  # two overflows and a good step: scale and growth tracker both move
        tools.optimizer.zero_grad()
        acc.scaler.scale(layer(torch.ones(1, 3)).sum() * float("inf")).backward()
        apply_step(acc, tools, 1.0)
    tools.optimizer.zero_grad()
    acc.scaler.scale(layer(torch.ones(1, 3)).sum()).backward()
    apply_step(acc, tools, 1.0)
    extra = {
        "optimizer": tools.optimizer.optimizer.state_dict(),
        "scheduler": tools.scheduler.state_dict(),
        "scaler": acc.scaler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    engine = EngineInfo("torch", 0, 1)
    path = save_checkpoint(
        tmp_path, 4, weights={}, extra=extra, state={"opt_step": 4}, engine=engine, main=True, wait=lambda: None
    )
    ckpt = read_checkpoint(path, engine)  # weights_only: plain tensors and numbers only
    fresh = torch.amp.GradScaler("cpu")
    fresh.load_state_dict(ckpt.extra["scaler"])
    assert fresh.get_scale() == acc.scaler.get_scale() == 2.0**10
    assert fresh.state_dict() == acc.scaler.state_dict()
    assert ckpt.extra["scheduler"]["last_epoch"] == 1 and ckpt.state == {"opt_step": 4}


def test_deepspeeds_loss_scaler_is_an_object_only_deepspeed_reads_back(tmp_path):
    """Why a DeepSpeed checkpoint is saved and loaded by DeepSpeed: its optimizer state holds the scaler
    object, which torch.load(weights_only=True) refuses (the resume failure of issue 32)."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler

    scaler = DynamicLossScaler(2.0**16, 1000, 1, 1, False)
    scaler.cur_scale = 2.0**15  # as after an overflow (update_scale itself needs DeepSpeed's process group)
    torch.save({"loss_scaler": scaler}, tmp_path / "zero.pt")
    with pytest.raises(Exception, match="weights_only|Unsupported global"):
        torch.load(tmp_path / "zero.pt", weights_only=True)
    assert torch.load(tmp_path / "zero.pt", weights_only=False)["loss_scaler"].cur_scale == 2.0**15


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_head_scores_in_fp32_from_weights_an_engine_cast_to_half(dtype):
    torch.manual_seed(0)
    head = PolicyHead(hidden_size=8, width=4)
    n = 3
    features = PolicyFeatures(
        hidden=torch.randn(n, 8),
        **{name: torch.rand(n) for name in PolicyFeatures.SCALARS},
    )
    reference = head(features)
    head.to(dtype)  # what DeepSpeed's engine does to every parameter of the module
    scores = head(features)
    assert scores.dtype == torch.float32 and reference.dtype == torch.float32
    assert torch.allclose(scores, reference, rtol=0.05, atol=0.05)


def accelerator_with(plugin):
    """What configure_deepspeed reads: accelerate's state holding a real DeepSpeedPlugin."""
    from types import SimpleNamespace

    return SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin))


def test_gradient_clipping_comes_from_train_max_grad_norm_alone():
    from accelerate.utils import DeepSpeedPlugin

    from vovnet.launch import BatchPlan

    plan = BatchPlan(batch=8, processes=2, micro=2, accumulation=2)
    plugin = DeepSpeedPlugin(zero_stage=2)  # the shipped configs set no gradient_clipping: "auto"
    configure_deepspeed(accelerator_with(plugin), plan, {"max_grad_norm": 0.5})
    cfg = plugin.deepspeed_config
    assert cfg["gradient_clipping"] == 0.5
    assert (cfg["train_batch_size"], cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"]) == (
        8,
        2,
        2,
    )
    with pytest.raises(VovnetError, match=r"gradient_clipping 1.0.*train.max_grad_norm is 0.5"):
        configure_deepspeed(
            accelerator_with(DeepSpeedPlugin(zero_stage=2, gradient_clipping=1.0)), plan, {"max_grad_norm": 0.5}
        )


def test_a_checkpoint_from_another_engine_or_layout_is_one_line(tmp_path):
    zero2 = EngineInfo("deepspeed", 2, 2)
    path = save_checkpoint(tmp_path, 5, weights={}, extra={}, state={}, engine=zero2, main=True, wait=lambda: None)
    check_resumable(path, zero2)  # the same launch resumes
    for now, what in (
        (EngineInfo("deepspeed", 2, 4), "DeepSpeed ZeRO-2 on 4 process"),
        (EngineInfo("deepspeed", 3, 2), "DeepSpeed ZeRO-3 on 2 process"),
        (EngineInfo("torch", 0, 1), "torch (one process)"),
    ):
        with pytest.raises(VovnetError) as exc:
            check_resumable(path, now)
        msg = str(exc.value)
        assert "\n" not in msg and str(path) in msg and "DeepSpeed ZeRO-2 on 2 process" in msg and what in msg
    torch_ckpt = save_checkpoint(
        tmp_path / "t",
        5,
        weights={},
        extra={},
        state={},
        engine=EngineInfo("torch", 0, 2),
        main=True,
        wait=lambda: None,
    )
    check_resumable(torch_ckpt, EngineInfo("torch", 0, 1))  # whole optimizer state: any process count


def test_under_deepspeed_the_engine_keeps_the_master_weights_and_zero3_refuses_a_full_finetune(tiny_model_dir, params):
    from accelerate.utils import DeepSpeedPlugin

    from vovnet.model.factory import build_vovnet

    p = json.loads(json.dumps(params))
    p["model"].update(name=str(tiny_model_dir), finetune="full", dtype="float16")
    model, _ = build_vovnet(p)
    master_weights(accelerator_with(DeepSpeedPlugin(zero_stage=2)), model, p["model"])
    assert {q.dtype for q in model.lm.parameters() if q.requires_grad} == {torch.float16}  # the engine's to cast
    with pytest.raises(VovnetError, match=r"model.finetune: full under ZeRO-3 is not supported") as exc:
        master_weights(accelerator_with(DeepSpeedPlugin(zero_stage=3)), model, p["model"])
    assert "\n" not in str(exc.value)


def test_fp16_auto_cast_is_off_so_the_batch_reaches_the_model_in_its_own_dtypes():
    from accelerate.utils import DeepSpeedPlugin

    from vovnet.launch import BatchPlan

    plugin = DeepSpeedPlugin(zero_stage=2)
    plugin.set_mixed_precision("fp16")  # what accelerate does for mixed_precision: fp16
    assert plugin.deepspeed_config["fp16"]["auto_cast"] is True
    configure_deepspeed(accelerator_with(plugin), BatchPlan(4, 1, 4, 1), {"max_grad_norm": 1.0})
    assert plugin.deepspeed_config["fp16"] == {"enabled": True, "auto_cast": False}
