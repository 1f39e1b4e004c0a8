"""The equal-token baselines through the evaluation core on the tiny model (vovnet/evaluation/sweep.py): the
resolution sweep at the COARSE and FULL budgets is always-COARSE and always-FULL, pruning at share 1.0 is
always-FULL, policy-then-prune at 1.0 is the learned policy, smaller shares cost what they keep, each margin
carries its paired interval on the same interpolated figure, the baselines are asked in the set's prompt
variant, the demo_wide preset gives them room (FULL 64 tokens), and a bad
budget or share is refused in one line naming its key."""

import json
from pathlib import Path

import pytest
import torch
from conftest import get_protocol

from vovnet import VovnetError
from vovnet.config import load_params, revalidate


def _params():
    params = load_params("params.yaml")
    vb = params["vision_budget"]
    ecfg = params["evaluation"]
    ecfg.update(max_samples=2, batch_size=4)
    ecfg["resolution_sweep"] = [dict(vb["coarse"]), {"min_pixels": 1024, "max_pixels": 4096}, dict(vb["full"])]
    ecfg["pruning"] = {
        "methods": ["random", "attention"],
        "keep_shares": [0.5, 1.0],
        "attention_layer": 1,
        "policy_then_prune": {"method": "random", "keep_share": 1.0},
    }
    return revalidate(params)


@pytest.fixture
def evaluated(in_workspace):
    from vovnet.evaluation.core import evaluate_set
    from vovnet.model.factory import build_vovnet, save_vovnet

    params = _params()
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    save_vovnet(model, processor, params, "models/vovnet")
    set_cfg = params["evaluation"]["sets"]["mmbench"]
    result = evaluate_set("mmbench", set_cfg, params, "eval/mmbench", get_protocol(set_cfg["protocol"]))
    return params, set_cfg, result["report"]


def _point(curve, param):
    return next(p for p in curve if p["param"] == param)


def test_sweep_and_pruning_ends_are_the_actions_and_the_margins_are_read_at_learned_tokens(evaluated):
    params, set_cfg, rep = evaluated
    eq, base = rep["equal_token_baselines"], rep["baselines"]
    vb = params["vision_budget"]
    res = eq["curves"]["resolution"]
    for action, budget in (("coarse", vb["coarse"]), ("full", vb["full"])):
        p, b = _point(res, budget["max_pixels"]), base[f"always_{action}"]
        assert (p["accuracy"], p["vision_tokens"]) == (b["accuracy"], b["vision_tokens"])
    assert [p["vision_tokens"] for p in res] == sorted(p["vision_tokens"] for p in res)
    full = base["always_full"]
    for method in ("random", "attention"):
        curve = eq["curves"][f"prune_{method}"]
        whole, half = _point(curve, 1.0), _point(curve, 0.5)
        assert (whole["accuracy"], whole["vision_tokens"]) == (full["accuracy"], full["vision_tokens"])
        assert 0 < half["vision_tokens"] < full["vision_tokens"]
    then, learned = eq["learned_then_prune"], rep["learned"]
    assert (then["accuracy"], then["vision_tokens"]) == (learned["accuracy"], learned["vision_tokens"])
    for curve, at in eq["accuracy_at_learned_tokens"].items():
        margin = eq["learned_margin"][curve]
        assert (margin is None) == (at is None)
        paired = eq["comparisons"][curve]
        assert (paired is None) == (at is None)
        if at is not None:
            assert margin == pytest.approx(learned["accuracy"] - at)
            # the paired interval is on the same interpolated figure, question by question
            assert (paired["baseline"], paired["difference"]) == (pytest.approx(at), pytest.approx(margin))
            lo, hi = paired["ci95"]
            assert lo <= paired["difference"] <= hi
            assert paired["beyond_interval"] == (lo > 0 or hi < 0)
    same = eq["comparisons"]["learned_then_prune"]  # share 1.0: the learned policy itself
    assert (same["difference"], same["ci95"], same["beyond_interval"]) == (0.0, [0.0, 0.0], False)
    assert same["baseline_tokens"] == learned["vision_tokens"]
    pareto = json.loads(Path("eval/mmbench/pareto.json").read_text())
    assert {"resolution", "prune_random", "prune_attention", "learned_then_prune"} <= {p["policy"] for p in pareto}


def test_baselines_that_only_reuse_the_actions_answers_still_report(evaluated, tmp_path):
    from vovnet.evaluation.core import evaluate_set

    params = _params()  # the model `evaluated` saved, other baselines
    vb, ecfg = params["vision_budget"], params["evaluation"]
    ecfg["resolution_sweep"] = [dict(vb["coarse"]), dict(vb["full"])]
    ecfg["pruning"].update(methods=["random"], keep_shares=[1.0])
    ecfg["generation_log"] = str(tmp_path / "logs")
    params = revalidate(params)
    set_cfg = params["evaluation"]["sets"]["mmbench"]
    rep = evaluate_set("mmbench", set_cfg, params, str(tmp_path / "eval"), get_protocol(set_cfg["protocol"]))["report"]
    eq, base = rep["equal_token_baselines"], rep["baselines"]
    assert [(p["accuracy"], p["vision_tokens"]) for p in eq["curves"]["resolution"]] == [
        (base[f"always_{a}"]["accuracy"], base[f"always_{a}"]["vision_tokens"]) for a in ("coarse", "full")
    ]
    assert eq["curves"]["prune_random"][0]["accuracy"] == base["always_full"]["accuracy"]
    assert eq["learned_then_prune"]["accuracy"] == rep["learned"]["accuracy"]
    assert not (tmp_path / "logs" / "mmbench.baselines").exists()  # nothing generated for them


def test_sweep_answers_match_the_actions_record_by_record(evaluated):
    from vovnet.evaluation.core import generate, setup
    from vovnet.evaluation.sharding import current_shard
    from vovnet.evaluation.sweep import Variant, generate_baselines, generate_variant, variants

    params, set_cfg, _ = evaluated
    ev = setup("mmbench", set_cfg, params, current_shard(), get_protocol(set_cfg["protocol"]))
    gens, generated = generate(ev), generate_baselines(ev)  # both read back from the generation logs
    vb = params["vision_budget"]
    for action in ("coarse", "full"):  # what the sweep reuses at an action's budget, generated its own way
        budget = (vb[action]["min_pixels"], vb[action]["max_pixels"])
        assert all(v.budget != budget for v in generated)
        outs = generate_variant(ev, Variant("resolution", budget[1], "coarse", budget))
        assert [o["output"] for o in outs] == [g["outputs"][action] for g in gens]
        assert [o["vision_tokens"] for o in outs] == [g["vision_tokens"][action] for g in gens]
    pruned = [(v, outs) for v, outs in generated.items() if v.rule and v.rule.share == 0.5 and v.action == "full"]
    assert {v.rule.method for v, _ in pruned} == {"random", "attention"}
    for _, outs in pruned:
        assert [o["vision_tokens"] for o in outs] == [max(1, (g["vision_tokens"]["full"] + 1) // 2) for g in gens]
    assert len(variants(params["evaluation"])) == 3 + 4 + 1  # policy-then-prune's FULL is the 1.0 curve point
    # the sweep's COARSE and FULL budgets, and every kept share of 1.0, are the actions' own answers
    assert sorted(str((v.budget, v.rule and (v.rule.method, v.rule.share))) for v in generated) == [
        "((1024, 4096), None)",
        "(None, ('attention', 0.5))",
        "(None, ('random', 0.5))",
    ]


def test_bad_budgets_and_shares_name_their_key(in_workspace):
    from vovnet.evaluation.sweep import check_budgets
    from vovnet.model.factory import build_vovnet

    params = _params()
    _, processor = build_vovnet(params)
    vb = params["vision_budget"]
    for bad in (vb["full"]["max_pixels"] + 1, 100):
        with pytest.raises(VovnetError, match=r"^evaluation\.resolution_sweep\[1\]\.max_pixels: ") as exc:
            check_budgets([vb["coarse"], {"min_pixels": 64, "max_pixels": bad}], vb, processor.image_processor)
        assert "\n" not in str(exc.value)
    for share in (0.0, 1.5):
        params["evaluation"]["pruning"]["keep_shares"] = [share]
        with pytest.raises(VovnetError, match=r"evaluation\.pruning\.keep_shares") as exc:
            revalidate(params)
        assert "\n" not in str(exc.value)


def test_baselines_are_asked_in_the_set_s_prompt_variant(evaluated):
    from vovnet.evaluation.core import setup
    from vovnet.evaluation.sharding import current_shard
    from vovnet.model.encoding import RecordDataset

    params, set_cfg, _ = evaluated
    protocol = get_protocol(set_cfg["protocol"])
    standard = setup("mmbench", set_cfg, params, current_shard(), protocol).encoder
    qwen = setup("mmbench", {**set_cfg, "prompt": "qwen"}, params, current_shard(), protocol).encoder
    budget = params["vision_budget"]["coarse"]
    ev = setup("mmbench", set_cfg, params, current_shard(), protocol)
    rec = ev.records[0]
    images = RecordDataset([rec], qwen, with_target=False).images(rec)

    def ids(encoder):
        return encoder.encode(rec, images, "coarse", with_target=False)["input_ids"]

    assert ids(qwen.with_budget("coarse", budget)) == ids(qwen) != ids(standard)


def test_demo_wide_gives_the_curves_room_full_64_tokens(tmp_path):
    from transformers import Qwen2VLImageProcessor

    from vovnet.evaluation.sweep import check_budgets
    from vovnet.model.budgets import budget_tokens
    from vovnet.presets import write_preset

    path = tmp_path / "params.yaml"
    path.write_text(Path("params.yaml").read_text())
    write_preset("demo_wide", path)
    params = load_params(path)
    tiny, vb, ecfg = params["model"]["tiny"], params["vision_budget"], params["evaluation"]
    processor = Qwen2VLImageProcessor(patch_size=tiny["patch_size"], merge_size=2, temporal_patch_size=2)
    side = params["datasets"]["demo"]["generator"]["image_size"]

    def tokens(budget):
        return budget_tokens(processor, [(side, side)], budget)

    assert (tokens(vb["coarse"]), tokens(vb["full"])) == (4, 64)
    check_budgets(ecfg["resolution_sweep"], vb, processor)
    assert [tokens(b) for b in ecfg["resolution_sweep"]] == [1, 4, 16, 36, 64]  # below, at and above COARSE
    assert [max(1, round(s * 64)) for s in ecfg["pruning"]["keep_shares"]] == [4, 16, 32, 64]
    assert set(ecfg["pruning"]["methods"]) == {"random", "attention"} and ecfg["pruning"]["policy_then_prune"]
    assert ecfg["pruning"]["attention_layer"] < params["model"]["tiny"]["layers"]
    assert tiny["vision_positions"] >= (side // tiny["patch_size"]) ** 2
