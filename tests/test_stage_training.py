"""What each training stage trains: the Instruct model only in stage 1, a frozen LoRA in stage 2, a frozen
Thinking model's FULL loss in stage 2 only, and prefix reuse under gradient checkpointing."""

import pytest
import torch

from vovnet.config import load_params
from vovnet.io_utils import read_jsonl
from vovnet.model.encoding import ActionCollator, Encoder, RecordDataset
from vovnet.model.factory import build_vovnet
from vovnet.model.losses import per_sample_lm_loss
from vovnet.model.vovnet import model_inputs
from vovnet.training.optim import stage_optimizer


@pytest.fixture(scope="module")
def thinking_dir(tmp_path_factory, params):
    """A second tiny model, with other random weights, standing in for the Thinking model."""
    from conftest import build_tiny_model

    out = tmp_path_factory.mktemp("models") / "thinking"
    build_tiny_model(out, {**params["model"], "tiny": {**params["model"]["tiny"], "seed": 1}})
    return out


def build(params, n=4):
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    ds = RecordDataset(
        list(read_jsonl(params["train"]["train_file"]))[:n], Encoder(processor, params["vision_budget"], 2048)
    )
    batch = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)([ds[i] for i in range(n)])
    return model, batch


def lora_state(model):
    return {n: p.detach().clone() for n, p in model.lm.named_parameters() if "lora_" in n}


def test_frozen_lora_is_out_of_stage2_and_bit_identical(in_workspace):
    params = load_params("params.yaml")
    tcfg = {**params["train"], "weight_decay": 0.1}
    model, batch = build(params)
    model.set_stage(1, train_lora=False)
    assert all(p.requires_grad for n, p in model.lm.named_parameters() if "lora_" in n)
    assert not any(p.requires_grad for p in model.head.parameters())
    model.set_stage(2, train_lora=False)
    assert not any(p.requires_grad for n, p in model.lm.named_parameters() if "lora_" in n)
    optimizer, scheduler = stage_optimizer(model, tcfg, steps=3)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in model.head.parameters()}
    before, head_before = lora_state(model), [p.detach().clone() for p in model.head.parameters()]
    for _ in range(3):
        out = model(batch, stage=2, policy_cfg=params["policy"], train_lora=False, prefix_reuse=True)
        out["loss"].backward()
        for g in optimizer.param_groups:  # as ZeRO does: every optimised parameter gets a gradient, zeros if none
            for p in g["params"]:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    after = lora_state(model)
    assert before.keys() == after.keys() and before
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(a, b) for a, b in zip(head_before, model.head.parameters()))


def test_stage2_with_train_lora_optimises_lora_and_head(in_workspace):
    params = load_params("params.yaml")
    model, _ = build(params, n=1)
    model.set_stage(2, train_lora=True)
    optimizer, _ = stage_optimizer(model, params["train"], steps=1)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    lora = {id(p) for n, p in model.lm.named_parameters() if "lora_" in n}
    assert lora and lora <= in_optimizer and {id(p) for p in model.head.parameters()} <= in_optimizer


def test_thinking_model_stage1_trains_instruct_and_stage2_takes_full_from_thinking(in_workspace, thinking_dir):
    params = load_params("params.yaml")
    params["model"] = {**params["model"], "use_thinking_for_full": True, "full_model_name": str(thinking_dir)}
    model, batch = build(params)
    model.set_stage(1, train_lora=False)
    out = model(batch, stage=1, action="full")  # crashed before: the frozen Thinking model gave a loss without grad
    out["loss"].backward()
    assert out["loss"].requires_grad
    assert any(p.grad is not None for n, p in model.lm.named_parameters() if "lora_" in n)
    assert all(p.grad is None for p in model.full_lm.parameters())
    with torch.no_grad():
        own = model.lm(**model_inputs(batch["full"])).loss
    assert torch.allclose(out["loss"].detach(), own)  # the Instruct model's loss, not the Thinking model's
    model.zero_grad(set_to_none=True)
    model.set_stage(2, train_lora=True)
    branch, _ = model.branch_losses(batch, prefix_reuse=True)
    with torch.no_grad():
        thinking = per_sample_lm_loss(model.full_lm(**model_inputs(batch["full"])).logits, batch["full"]["labels"])[0]
        instruct = per_sample_lm_loss(model.lm(**model_inputs(batch["full"])).logits, batch["full"]["labels"])[0]
    assert torch.allclose(branch[:, 2].detach(), thinking, atol=1e-5)
    assert not torch.allclose(thinking, instruct, atol=1e-3)  # the two models differ, so the check has teeth
    branch.sum().backward()  # the Instruct branches train with train_lora; FULL came under no_grad
    assert all(p.grad is None for p in model.full_lm.parameters())
    assert any(p.grad is not None for n, p in model.lm.named_parameters() if "lora_" in n)


def test_prefix_reuse_under_gradient_checkpointing_matches_the_plain_path(in_workspace):
    """Stage 2 with train_lora and gradient checkpointing on (the paper preset): reuse gives the plain path's
    losses, features and LoRA gradients (it failed with a shape mismatch when checkpointing dropped the cache)."""
    params = load_params("params.yaml")
    model, batch = build(params)
    with torch.no_grad():  # move LoRA off its zero init so the adapter matters
        for n, p in model.lm.named_parameters():
            if "lora_" in n:
                p.add_(0.02 * torch.randn_like(p))
    model.set_stage(2, train_lora=True)
    model.train()

    def run(reuse):
        model.zero_grad(set_to_none=True)
        branch, feats = model.branch_losses(batch, prefix_reuse=reuse)
        (branch * torch.tensor([1.0, 2.0, 3.0])).sum().backward()  # every action's loss reaches the LoRA
        return branch.detach(), feats, {n: p.grad.clone() for n, p in model.lm.named_parameters() if p.grad is not None}

    plain, plain_feats, plain_grads = run(reuse=False)
    model.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.lm.enable_input_require_grads()
    assert model.lm.is_gradient_checkpointing
    reused, feats, grads = run(reuse=True)
    assert torch.allclose(reused, plain, atol=1e-5, rtol=1e-5)
    for f1, f2 in zip(feats.tensors(), plain_feats.tensors()):
        assert torch.allclose(f1, f2, atol=1e-5, rtol=1e-5)
    assert grads.keys() == plain_grads.keys() and any("lora_A" in k for k in grads)
    for k in grads:
        assert torch.allclose(grads[k], plain_grads[k], atol=1e-4, rtol=1e-4), k
    # the layers got their class default back: a plain cached call under checkpointing still drops the cache
    assert not any(getattr(m, "_can_checkpoint_with_cache", False) for m in model.lm.modules())


def test_thinking_model_generates_full_with_its_own_token_budget(in_workspace, thinking_dir, monkeypatch):
    from vovnet.model import generation
    from vovnet.model.loading import load_processor

    params = load_params("params.yaml")
    params["model"] = {**params["model"], "use_thinking_for_full": True, "full_model_name": str(thinking_dir)}
    model, _ = build(params, n=1)
    model.eval()
    processor = load_processor(params["model"]["name"], params["model"])
    ds = RecordDataset(
        list(read_jsonl(params["train"]["train_file"]))[:2],
        Encoder(processor, params["vision_budget"], 2048),
        with_target=False,
    )
    budgets = []
    real = generation.greedy_decode

    def spy(lm, *args):
        budgets.append(("thinking" if lm is model.full_lm else "instruct", args[-1]))
        return real(lm, *args)

    monkeypatch.setattr(generation, "greedy_decode", spy)
    gens = generation.generate_all(
        model, processor, ds, batch_size=2, max_new_tokens=3, device="cpu", max_length=4096, thinking_max_new_tokens=7
    )
    assert len(gens) == 2 and budgets == [("instruct", 3), ("instruct", 3), ("thinking", 7)]
