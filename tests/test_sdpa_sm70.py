"""Below sm_80 the loader runs SDPA with k/v expanded to every query head, so CUDA keeps the memory-efficient
kernel where transformers' own call (enable_gqa, no mask) would leave it only MATH; the plan counts the same."""

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from vovnet.__main__ import main
from vovnet.model import loading
from vovnet.model.loading import EXPANDED_SDPA, attention_implementation, expanded_sdpa_attention, sdpa_variant
from vovnet.model.plan import sdpa_kernel


class _SdpaCalls(TorchFunctionMode):
    """The (query heads, key heads, value heads, enable_gqa) of every SDPA call made inside it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            self.calls.append((q.shape[1], k.shape[1], v.shape[1], bool(kwargs.get("enable_gqa", False))))
        return func(*args, **kwargs)


def _cuda(monkeypatch, capability):
    """torch sees one CUDA device of `capability`; the model itself stays on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)


@pytest.mark.parametrize("masked", [False, True])
def test_expanded_attention_equals_transformers_enable_gqa(monkeypatch, masked):
    # transformers passes enable_gqa only without a mask; forced here so both cases compare against it
    monkeypatch.setenv("TRANSFORMERS_SDPA_FORCE_GQA", "1")
    gen = torch.Generator().manual_seed(0)
    module = SimpleNamespace(num_key_value_groups=4, is_causal=True)
    q = torch.randn(2, 8, 9, 16, generator=gen)
    k, v = (torch.randn(2, 2, 9, 16, generator=gen) for _ in "kv")
    mask = None
    if masked:  # causal, the first sequence left-padded by 3
        mask = torch.ones(9, 9, dtype=torch.bool).tril().expand(2, 1, 9, 9).clone()
        mask[0, :, :, :3] = False
        mask[0, :, torch.arange(3), torch.arange(3)] = True  # padding rows attend to themselves: no NaN
    with _SdpaCalls() as theirs:
        want, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.25)
    with _SdpaCalls() as ours:
        got, _ = expanded_sdpa_attention(module, q, k, v, mask, scaling=0.25)
    assert theirs.calls == [(8, 2, 2, True)] and ours.calls == [(8, 8, 8, False)]
    assert got.shape == want.shape == (2, 9, 8, 16)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert not torch.equal(got, sdpa_attention_forward(module, q, k, v, mask, scaling=0.5)[0])  # the scale counts


def test_kernel_selection_on_sm70_follows_the_variant():
    # the calls recorded above, as CUDA sm_70 would run them: transformers' MATH, ours memory-efficient
    assert sdpa_kernel(70, 8, 2) == "math" and sdpa_kernel(70, 8, 8) == "efficient"
    assert [sdpa_variant(sm) for sm in (None, 60, 70, 75, 80, 90)] == ["gqa"] * 1 + ["expanded"] * 3 + ["gqa"] * 2
    assert attention_implementation("sdpa", 70) == EXPANDED_SDPA
    assert [attention_implementation(a, s) for a, s in (("sdpa", 80), ("sdpa", None), ("eager", 70))] == [
        "sdpa",
        "sdpa",
        "eager",
    ]


def _language_attention_calls(model, ids) -> list:
    with torch.no_grad(), _SdpaCalls() as rec:
        logits = model(input_ids=ids).logits
    return rec.calls, logits


@pytest.mark.parametrize("capability, expanded", [((7, 0), True), ((8, 0), False)])
def test_loader_expands_kv_on_a_mocked_sm70_gpu(tiny_model_dir, params, monkeypatch, capability, expanded):
    mcfg = params["model"]
    reference = loading.load_base_model(str(tiny_model_dir), mcfg, torch.float32)  # CPU: transformers' sdpa
    assert reference.config._attn_implementation == "sdpa"
    _cuda(monkeypatch, capability)
    model = loading.load_base_model(str(tiny_model_dir), mcfg, torch.float32)
    assert model.config.text_config._attn_implementation == (EXPANDED_SDPA if expanded else "sdpa")
    text = model.config.text_config
    heads, kv = text.num_attention_heads, text.num_key_value_heads
    assert heads > kv  # the tiny model is grouped-query, as the 8B
    ids = torch.randint(0, text.vocab_size, (1, 12), generator=torch.Generator().manual_seed(1))
    calls, logits = _language_attention_calls(model, ids)
    ref_calls, ref_logits = _language_attention_calls(reference, ids)
    assert len(calls) == len(ref_calls) == text.num_hidden_layers
    assert set(ref_calls) == {(heads, kv, kv, True)}  # batch 1, no padding: no mask, enable_gqa
    assert set(calls) == ({(heads, heads, heads, False)} if expanded else {(heads, kv, kv, True)})
    sm = 10 * capability[0] + capability[1]
    assert {sdpa_kernel(sm, q, k) for q, k, _, _ in calls} == {"efficient"}
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-5)
    # a padded batch keeps its mask under the registered name (transformers gives unknown names none)
    pad = torch.ones(2, 12, dtype=torch.long)
    pad[0, :4] = 0
    with torch.no_grad():
        got = model(input_ids=ids.expand(2, -1), attention_mask=pad).logits
        want = reference(input_ids=ids.expand(2, -1), attention_mask=pad).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert not torch.allclose(got[0], got[1], atol=1e-3)  # the padding changed the first row


def test_plan_cli_sm70_counts_the_expanded_kernel(tmp_path, capsys):
    from test_gpu_env import paper_params

    (tmp_path / "params.yaml").write_text(json.dumps(paper_params(tmp_path)))
    args = ["plan", "--params", str(tmp_path / "params.yaml"), "--gpus", "8", "--gpu-memory", "32"]
    assert main([*args, "--dtype", "float16", "--sm", "70"]) == 0
    out = capsys.readouterr().out
    assert "attention on sm_70: memory-efficient, k/v expanded to every query head" in out
    assert "configs/accelerate/zero3_v100.yaml: fits (13.5 of 14.4 usable GiB" in out
    main([*args, "--dtype", "float16", "--sm", "80"])
    assert "attention on sm_80: memory-efficient (q, k, v" in capsys.readouterr().out
