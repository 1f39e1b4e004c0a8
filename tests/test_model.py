import copy
import json

import pytest
import torch

from vovnet.config import load_params
from vovnet.io_utils import read_jsonl
from vovnet.model.budgets import ACTIONS
from vovnet.model.encoding import IGNORE, ActionCollator, Encoder, RecordDataset
from vovnet.model.factory import build_vovnet, load_vovnet, save_vovnet
from vovnet.model.losses import per_sample_lm_loss


@pytest.fixture
def setup(in_workspace):
    params = load_params("params.yaml")
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    encoder = Encoder(processor, params["vision_budget"], 2048)
    records = list(read_jsonl(params["train"]["train_file"]))[:4]
    ds = RecordDataset(records, encoder)
    collator = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)
    return params, model, processor, encoder, ds, collator, records


def test_task_loss_is_the_models_own_loss_on_answer_tokens(setup):
    params, model, processor, encoder, ds, collator, records = setup
    batch = collator([ds[i] for i in range(4)])["full"]
    inputs = {
        k: batch[k]
        for k in ("input_ids", "attention_mask", "labels", "mm_token_type_ids", "pixel_values", "image_grid_thw")
    }
    out = model.lm(**inputs)
    per, count = per_sample_lm_loss(out.logits, batch["labels"])
    assert torch.allclose((per * count).sum() / count.sum(), out.loss, atol=1e-5)
    enc = ds[0]["full"]
    answer = processor.tokenizer(encoder_target(records[0]), add_special_tokens=False)["input_ids"]
    assert [t for t in enc["labels"] if t != IGNORE] == answer  # only the answer (+ end token) counts
    assert enc["labels"][: enc["prompt_len"]] == [IGNORE] * enc["prompt_len"]


def encoder_target(rec):
    from vovnet.model import prompts

    return prompts.target(rec) + prompts.END


def test_policy_inputs_do_not_see_the_answer(setup):
    params, model, processor, encoder, ds, collator, records = setup
    rec = records[0]
    other = copy.deepcopy(rec)
    other["answer"]["label"] = (rec["answer"]["label"] + 1) % len(rec["choices"])
    imgs = ds.images(rec)
    a = collator([encoder.encode_all(rec, imgs), encoder.encode_all(other, imgs)])["no"]
    assert not torch.equal(a["input_ids"][0], a["input_ids"][1])  # the sequences do differ (answers)
    with torch.no_grad():
        _, feats = model.text_pass(a)
        scores = model.policy_scores(feats)
    for f in feats.tensors():
        assert torch.allclose(f[0], f[1], atol=1e-6)
    assert torch.allclose(scores[0], scores[1], atol=1e-6)


def test_action_costs_are_the_processors_token_counts(setup):
    params, model, processor, encoder, ds, collator, records = setup
    rec = records[0]
    imgs = ds.images(rec)
    for action in ("coarse", "full"):
        b = params["vision_budget"][action]
        out = processor(
            text=["<|vision_start|><|image_pad|><|vision_end|>"],
            images=imgs,
            images_kwargs={"size": {"shortest_edge": b["min_pixels"], "longest_edge": b["max_pixels"]}},
            return_tensors="pt",
        )
        n = int((out["input_ids"] == processor.image_token_id).sum())
        assert encoder.encode(rec, imgs, action)["vision_tokens"] == n
    costs = [encoder.encode(rec, imgs, a)["vision_tokens"] for a in ACTIONS]
    assert costs[0] == 0 < costs[1] < costs[2]


def test_only_lora_and_head_are_trainable(setup):
    model = setup[1]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert any(n.startswith("head.") for n in trainable)
    assert not any(".visual." in n for n in trainable)
    assert all("language_model" in n for n in trainable if "lora_" in n)


def test_save_load_round_trip_gives_identical_outputs(setup, tmp_path):
    params, model, processor, encoder, ds, collator, records = setup
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))  # non-trivial LoRA B and head
    model.eval()
    save_vovnet(model, processor, params, tmp_path / "vov")
    loaded, _, cfg = load_vovnet(tmp_path / "vov", params)
    batch = collator([ds[i] for i in range(2)])
    with torch.no_grad():
        _, f1 = model.text_pass(batch["no"])
        _, f2 = loaded.text_pass(batch["no"])
        s1, s2 = model.policy_scores(f1), loaded.policy_scores(f2)
        full = {
            k: batch["full"][k]
            for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
        }
        l1, l2 = model.lm(**full).logits, loaded.lm(**full).logits
    assert torch.allclose(s1, s2, atol=1e-6) and torch.allclose(l1, l2, atol=1e-5)
    assert cfg["train"]["lr"] == params["train"]["lr"]
    assert not list((tmp_path / "vov").glob("*.bin"))  # safetensors only


def test_prefix_reuse_matches_the_plain_path(setup):
    from vovnet.model.prefix_reuse import reuse_forward

    params, model, processor, encoder, ds, collator, records = setup
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))
    model.eval()
    encs = [ds[i] for i in range(4)]
    batches = collator(encs)
    with torch.no_grad():
        plain = []
        for a in ACTIONS:
            b = batches[a]
            out = model.lm(
                **{
                    k: b[k]
                    for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
                    if k in b
                }
            )
            plain.append(per_sample_lm_loss(out.logits, b["labels"])[0])
        _, plain_feats = model.text_pass(batches["no"])
        reused, feats = reuse_forward(model.lm, encs, processor.tokenizer.pad_token_id, processor.image_token_id, "cpu")
    assert torch.allclose(torch.stack(plain, -1), reused, atol=1e-4, rtol=1e-4)
    for f1, f2 in zip(plain_feats.tensors(), feats.tensors()):
        assert torch.allclose(f1, f2, atol=1e-4, rtol=1e-4)


def test_thinking_model_for_full_vision_is_frozen_and_used(in_workspace, tiny_model_dir):
    params = load_params("params.yaml")
    params["model"] = {**params["model"], "use_thinking_for_full": True, "full_model_name": str(tiny_model_dir)}
    model, processor = build_vovnet(params)
    assert model.full_lm is not None and model.lm_for("full") is model.full_lm and model.lm_for("coarse") is model.lm
    assert not any(p.requires_grad for p in model.full_lm.parameters())
    ds = RecordDataset(
        list(read_jsonl(params["train"]["train_file"]))[:2], Encoder(processor, params["vision_budget"], 2048)
    )
    batch = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)([ds[0], ds[1]])
    out = model(batch, stage=2, policy_cfg=params["policy"], prefix_reuse=True)  # reuse falls back: two models
    out["loss"].backward()
    assert all(p.grad is None for p in model.full_lm.parameters())
    assert any(p.grad is not None for p in model.head.parameters())


def test_export_parquet_matches_jsonl(tmp_path):
    import shutil

    import pyarrow.parquet as pq
    from conftest import ROOT, ds_cfg, normalize_dataset

    cfg = ds_cfg("mmbench", splits=["dev"])
    raw = tmp_path / "raw" / "mmbench"  # a copy: normalize keeps its hash cache next to the raw folder
    shutil.copytree(ROOT / "data" / "samples" / "mmbench", raw)
    normalize_dataset("mmbench", cfg, raw, tmp_path / "o", seed=0, max_image_pixels=89_478_485, export_parquet=True)
    table = pq.read_table(tmp_path / "o" / "mmbench_dev.parquet").to_pylist()
    lines = [json.loads(x) for x in (tmp_path / "o" / "mmbench_dev.jsonl").read_text().splitlines()]
    assert [r["id"] for r in table] == [r["id"] for r in lines]
    assert json.loads(table[0]["meta"]) == lines[0]["meta"] and table[0]["choices"] == lines[0]["choices"]


def test_gumbel_straight_through_is_hard_forward_soft_backward():
    from vovnet.model.policy import gumbel_straight_through

    scores = torch.tensor([[0.5, 1.0, -0.2], [2.0, 0.0, 0.1]], requires_grad=True)
    y = gumbel_straight_through(scores, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y.detach().sum(-1), torch.ones(2)) and set(y.detach().flatten().tolist()) <= {0.0, 1.0}
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0  # the soft sample carries the gradient
    y2 = gumbel_straight_through(scores, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y.detach(), y2.detach())  # seeded: resumable


def test_head_width_follows_the_policy_features():
    """One producer: the head's input is the features' hidden state plus every scalar PolicyFeatures names."""
    from vovnet.model.policy import PolicyFeatures, PolicyHead, policy_features

    head = PolicyHead(hidden_size=8, width=4)
    assert head.mlp[0].in_features == PolicyFeatures.width(8) == 8 + len(PolicyFeatures.SCALARS)
    hidden, logits = torch.randn(3, 5, 8), torch.randn(3, 5, 11)
    at = policy_features(hidden, logits, torch.tensor([4, 2, 0]))
    last = policy_features(hidden, logits)
    assert torch.equal(at.hidden[0], last.hidden[0]) and torch.equal(at.hidden[1], hidden[1, 2])
    p = torch.softmax(logits[2, 0], -1)
    assert torch.allclose(at.entropy[2], -(p * p.log()).sum(), atol=1e-6)
    assert head(at).shape == (3, 3)


def test_fast_image_processor_matches_the_pil_one_within_the_stated_tolerance(tiny_model_dir):
    """load_processor's image processor is the torchvision-backed one, and at every preset's budgets it gives
    the PIL one's image_grid_thw exactly and its pixel values within a stated tolerance. In the normalised
    units (mean and std 0.5) one 8-bit level is 1/127.5. Drawn images: at most 4 levels apart, mean under
    0.05 level. Random noise, the worst case for interpolation: mean under 0.5 level (strong anisotropic
    rescales move a few values by up to ~20 levels; measured 19)."""
    import numpy as np
    from conftest import ROOT
    from PIL import Image, ImageDraw
    from ruamel.yaml import YAML
    from transformers import AutoImageProcessor
    from transformers.image_processing_backends import TorchvisionBackend

    from vovnet.model.budgets import image_inputs
    from vovnet.model.loading import load_processor

    fast = load_processor(str(tiny_model_dir), {"trust_remote_code": False}).image_processor
    slow = AutoImageProcessor.from_pretrained(str(tiny_model_dir), backend="pil")
    assert isinstance(fast, TorchvisionBackend) and not isinstance(slow, TorchvisionBackend)
    budgets = [
        b
        for f in sorted((ROOT / "presets").glob("*.yaml"))
        for b in (YAML(typ="safe").load(f.read_text()).get("vision_budget") or {}).values()
    ]
    assert len(budgets) >= 6  # sample, demo and paper presets, COARSE and FULL each

    def drawn(w, h):
        img = Image.new("RGB", (w, h), (200, 180, 40))
        d = ImageDraw.Draw(img)
        d.ellipse([w // 5, h // 5, w * 3 // 5, h * 3 // 5], fill=(20, 60, 220))
        d.rectangle([w // 2, h // 2, w - 2, h - 2], fill=(230, 30, 30))
        return img

    rng = np.random.default_rng(0)
    level = 1 / 127.5
    for w, h in [(32, 32), (48, 40), (300, 40), (17, 900), (640, 480)]:
        noise = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for img, max_levels, mean_levels in ((drawn(w, h), 4, 0.05), (noise, None, 0.5)):
            for budget in budgets:
                a, b = image_inputs(fast, [img], budget), image_inputs(slow, [img], budget)
                assert torch.equal(a["image_grid_thw"], b["image_grid_thw"])
                diff = (a["pixel_values"] - b["pixel_values"]).abs() / level
                assert diff.mean() < mean_levels, (w, h, budget)
                assert max_levels is None or diff.max() <= max_levels + 1e-3, (w, h, budget)
