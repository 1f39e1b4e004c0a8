"""`python -m vovnet plan`: the real 8B architecture on meta, LoRA placement, memory verdicts, bad input."""

import copy
import json
import shutil

import pytest
import torch
from helpers import ROOT

from vovnet import VovnetError
from vovnet.__main__ import main
from vovnet.config import load_params
from vovnet.model import loading
from vovnet.model.plan import (
    _SavedForBackward,
    _unpack,
    build_meta_model,
    efficient_attention,
    read_config,
    trace_activations,
)
from vovnet.model.plan_memory import GIB, HEADROOM, make_plan

FIXTURE_8B = ROOT / "tests" / "fixtures" / "qwen3-vl-8b-instruct"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def preset_params(tmp_path, name: str, model_dir) -> dict:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    from vovnet.presets import write_preset

    write_preset(name, tmp_path / "params.yaml")
    params = load_params(tmp_path / "params.yaml")
    params["model"]["name"] = str(model_dir)
    return params


@pytest.fixture(scope="module")
def plan_8b(tmp_path_factory):
    params = preset_params(tmp_path_factory.mktemp("paper"), "paper", FIXTURE_8B)
    return params, make_plan(params, gpus=8, gpu_gib=32, dtype_name="float16")


def test_8b_fixture_has_the_published_parameter_count(plan_8b):
    _, plan = plan_8b
    lora_and_head = plan.arch.groups["LoRA adapters"][0] + plan.arch.groups["policy head"][0]
    base = plan.arch.frozen + plan.arch.trainable - lora_and_head
    assert abs(base - 8.77e9) / 8.77e9 < 0.01, base
    assert plan.arch.hidden == 4096 and plan.arch.layers == 36 and plan.arch.vocab == 151936
    assert plan.arch.groups["LM head"][0] == 151936 * 4096  # untied: its own matrix
    assert plan.arch.full_vision_tokens == 980  # paper budget 1,003,520 px / 32^2
    cfg = read_config(FIXTURE_8B)
    text, vision = cfg.text_config, cfg.vision_config
    assert (text.intermediate_size, text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (
        12288,
        32,
        8,
        128,
    )
    assert text.rope_parameters == {
        "rope_type": "default",
        "rope_theta": 5000000,
        "mrope_section": [24, 20, 20],
        "mrope_interleaved": True,
    }
    assert (
        vision.depth,
        vision.hidden_size,
        vision.intermediate_size,
        vision.num_heads,
        vision.out_hidden_size,
        vision.deepstack_visual_indexes,
        vision.patch_size,
        vision.spatial_merge_size,
    ) == (27, 1152, 4304, 16, 4096, [8, 16, 24], 16, 2)
    assert cfg.tie_word_embeddings is False


def test_8b_lora_only_on_language_model_projections(plan_8b):
    params, plan = plan_8b
    lora = plan.arch.lora_modules
    assert len(lora) == 36 * len(TARGETS)
    assert all(".language_model.layers." in n and n.rsplit(".", 1)[-1] in TARGETS for n in lora)
    assert not any(".visual." in n for n in lora)
    assert plan.arch.per_target == {t: 36 for t in TARGETS}
    # trainable = LoRA (r x (in + out) per projection) + the policy head, nothing of the base
    r = params["model"]["lora"]["r"]
    per_layer = r * ((4096 + 4096) * 2 + (4096 + 1024) * 2 + (4096 + 12288) * 3)
    assert plan.arch.groups["LoRA adapters"][1] == 36 * per_layer
    assert plan.arch.trainable == 36 * per_layer + plan.arch.groups["policy head"][1]
    assert plan.arch.groups["vision tower + mergers"][1] == 0


def test_paper_preset_fits_8x32gb_under_zero2_with_checkpointing(plan_8b):
    params, plan = plan_8b
    assert params["train"]["gradient_checkpointing"] and plan.configured_checkpointing
    row = next(r for r in plan.rows if r.strategy == "ZeRO-2" and r.checkpointing)
    assert plan.fits(row) and row.total < HEADROOM * 32 * GIB
    # the fp16 base replicated on every GPU is the largest term; without checkpointing it does not fit
    assert row.largest == "weights" and 17 * GIB < row.terms["weights"] < 18 * GIB
    # of which the vision tower and its mergers (frozen, ~0.58B) in fp32 rather than fp16: 2 bytes more each
    vision = plan.arch.groups["vision tower + mergers"][0]
    assert plan.vision_fp32 and plan.arch.frozen_vision == vision and 0.5e9 < vision < 0.7e9
    assert row.terms["weights"] == (plan.arch.frozen + plan.arch.trainable) * 2 + vision * 2
    assert not plan.fits(next(r for r in plan.rows if r.strategy == "ZeRO-2" and not r.checkpointing))
    zero3 = next(r for r in plan.rows if r.strategy == "ZeRO-3" and r.checkpointing)
    assert zero3.terms["weights"] < row.terms["weights"] / 3


def test_meta_trace_matches_what_autograd_saves_on_a_real_forward(tiny_model_dir, params):
    """The meta trace (per-layer loop + head) against the real model's forward on CPU: same bytes."""
    for attn in ("eager", "sdpa"):
        mcfg = {**params["model"], "name": str(tiny_model_dir), "attn_implementation": attn}
        model = loading.add_lora(loading.load_base_model(mcfg["name"], mcfg, torch.float32), mcfg)
        ids = torch.randint(10, 500, (2, 300), generator=torch.Generator().manual_seed(0))
        exclude = {t.untyped_storage()._cdata for t in list(model.parameters()) + list(model.buffers())}
        real = _SavedForBackward(exclude)
        with torch.autograd.graph.saved_tensors_hooks(real.pack, _unpack):
            model(input_ids=ids, labels=ids)
        meta = build_meta_model(read_config(mcfg["name"]), mcfg, torch.float32)
        trace = trace_activations(meta, 2, 300, torch.float32, amp=False, attn=attn)
        traced = trace.total(False) - trace.loss_backward
        assert 0.95 < traced / real.total < 1.10, (attn, traced, real.total)


def test_plan_cli_prints_the_table_for_the_tiny_model(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "params.yaml").write_text(f"model:\n  name: {tiny_model_dir}\n")
    assert main(["plan", "--params", str(tmp_path / "params.yaml"), "--gpus", "2", "--gpu-memory", "16"]) == 0
    out = capsys.readouterr().out
    assert "LoRA modules matched: 14 " in out
    for name in ("DDP ddp_8gpu.yaml", "ZeRO-2 zero2_v100.yaml", "ZeRO-3 zero3_v100.yaml"):
        assert sum(line.startswith(f"| {name}") for line in out.splitlines()) == 2  # ckpt off and on
    assert "verdict ZeRO-2: fits in 2 x 16 GiB" in out


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_plan_without_config_json_is_one_line(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "params.yaml").write_text(f"model:\n  name: {tmp_path / 'm'}\n")
    err = _one_line_error(capsys, ["plan", "--params", str(tmp_path / "params.yaml")])
    assert "no config.json" in err and str(tmp_path / "m") in err


def test_lora_pattern_matching_nothing_is_one_line(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "params.yaml").write_text(
        f"model:\n  name: {tiny_model_dir}\n  lora:\n    target_modules: [qkv_linear]\n"
    )
    err = _one_line_error(capsys, ["plan", "--params", str(tmp_path / "params.yaml")])
    assert "target_modules [qkv_linear] matches no language-model module" in err


def test_lora_touching_the_vision_tower_is_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    # a pattern that is not anchored to the language model reaches the vision blocks' `qkv`
    monkeypatch.setattr(loading, "LANGUAGE_MODULE_PATTERN", r".*\.({})$")
    (tmp_path / "params.yaml").write_text(
        f"model:\n  name: {tiny_model_dir}\n  lora:\n    target_modules: [q_proj, qkv]\n"
    )
    err = _one_line_error(capsys, ["plan", "--params", str(tmp_path / "params.yaml")])
    assert "touches the vision tower" in err and ".visual." in err


def test_other_model_type_warns_then_plans(tmp_path, capsys):
    from transformers import Qwen2_5_VLConfig

    Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            bos_token_id=1,
            eos_token_id=2,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        vision_config=dict(
            depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, fullatt_block_indexes=[0]
        ),
    ).save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    (tmp_path / "params.yaml").write_text(f"model:\n  name: {tmp_path / 'm'}\n")
    assert main(["plan", "--params", str(tmp_path / "params.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "warning: model type 'qwen2_5_vl' is not Qwen3-VL; planning it all the same"
    assert any(line.startswith("verdict ZeRO-2: ") for line in out)


def test_bad_gpu_arguments_are_one_line(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "params.yaml").write_text(f"model:\n  name: {tiny_model_dir}\n")
    with pytest.raises(VovnetError, match="--gpus must be >= 1"):
        make_plan(load_params(tmp_path / "params.yaml"), gpus=0)


def _kernel_bytes(kernel, q_heads, kv_heads, seq, dtype) -> int:
    """What one call of `kernel` keeps for backward, traced on meta tensors on its own."""
    q = torch.empty(1, q_heads, seq, 128, device="meta", dtype=dtype, requires_grad=True)
    k, v = (torch.empty(1, kv_heads, seq, 128, device="meta", dtype=dtype, requires_grad=True) for _ in "kv")
    saved = _SavedForBackward(set())
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, _unpack):
        kernel(q, k, v)
    return saved.total


def test_sm70_attention_rows_are_the_expanded_kernels_meta_trace(plan_8b):
    """On sm_70 transformers' own GQA call (no mask at batch 1) would run MATH; the loader expands k/v
    instead, and the plan counts the memory-efficient kernel with the expanded k/v it keeps."""
    params, plan70 = plan_8b  # planned without a GPU: for the V100 target, sm_70
    plan80 = make_plan(params, gpus=8, gpu_gib=32, dtype_name="float16", sm=80)
    math = _kernel_bytes(
        lambda q, k, v: torch.ops.aten._scaled_dot_product_attention_math(q, k, v, None, 0.0, True, enable_gqa=True),
        32,
        8,
        4096,
        torch.float16,
    )
    expanded = _kernel_bytes(lambda q, k, v: efficient_attention(q, k, v, is_causal=True), 32, 32, 4096, torch.float16)
    assert (plan70.kernel, plan80.kernel) == ("expanded", "efficient")
    assert plan70.attention == expanded and 2.15 * GIB < math < 2.2 * GIB  # MATH: fp32 scores (1 x 32 x 4096^2)
    assert expanded >= 4 * 32 * 4096 * 128 * 2  # q, k and v at 32 heads each, output
    for r70, r80 in zip(plan70.rows, plan80.rows):  # sm_80's count expands k/v as well
        assert r70.terms == r80.terms, r70.strategy
    zero3 = plan70.row("ZeRO-3", True)
    assert plan70.fits(zero3, 16) and 13.4 * GIB < zero3.total < 13.6 * GIB  # the 16 GB case, now fits


def test_inference_rows_and_the_thinking_model(plan_8b):
    params, plan = plan_8b
    (row,) = plan.inference
    weights = row.terms["weights"]
    assert row.name == "evaluate@ / predict" and row.batch == params["evaluation"]["batch_size"]
    assert abs(weights - plan.row("ZeRO-2", True).terms["weights"]) < 0.01 * GIB  # a whole fp16 copy per GPU
    kv = 2 * 36 * row.batch * 8 * 128 * row.length * 2
    assert row.terms["kv cache"] == kv and row.kernel == "expanded"  # sm_70: the loader expands k/v
    thinking = copy.deepcopy(params)
    thinking["model"].update(use_thinking_for_full=True, full_model_name=str(FIXTURE_8B))
    (row2,) = make_plan(thinking, gpus=8, gpu_gib=32, dtype_name="float16").inference
    assert row2.name == "evaluate@ / predict + Thinking"
    assert row2.terms["weights"] == 2 * weights - 2 * plan.arch.trainable  # a second copy, without LoRA and head
    new = params["evaluation"]["thinking_max_new_tokens"]
    assert row2.length == params["evaluation"]["max_length"] + new
    one = copy.deepcopy(params)
    one["evaluation"]["batch_size"] = 1
    (row3,) = make_plan(one, gpus=8, gpu_gib=32, dtype_name="float16", sm=70).inference
    assert row3.kernel == "expanded" and row3.terms["prefill"] < 1 * GIB  # MATH's fp32 scores were > 4 GiB
